package tokenizer

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// piece is a piece of normalized text on its way to the model. first says
// it starts at offset 0 of the original text (Metaspace's "first").
type piece struct {
	s     string
	first bool
}

// preTokenizer splits pieces into smaller ones (and may rewrite them).
type preTokenizer interface {
	preTokenize(ps []piece) []piece
}

// matcher finds the non-overlapping matches of a pattern, left to right,
// as byte ranges.
type matcher interface {
	find(s string, fn func(start, end int))
}

// literalMatcher matches a fixed string (a Split or Replace "String"
// pattern).
type literalMatcher string

func (m literalMatcher) find(s string, fn func(start, end int)) {
	if m == "" {
		return
	}
	off := 0
	for {
		i := strings.Index(s[off:], string(m))
		if i < 0 {
			return
		}
		fn(off+i, off+i+len(m))
		off += i + len(m)
	}
}

// runeMatcher matches every rune for which f is true, one match each.
type runeMatcher func(r rune) bool

func (m runeMatcher) find(s string, fn func(start, end int)) {
	for i, r := range s {
		if m(r) {
			fn(i, i+utf8.RuneLen(r))
		}
	}
}

// regexMatcher runs a regex with lookaround and Unicode classes (the
// library compiles them with Oniguruma; regexp2 reads the same syntax for
// the patterns these files use).
type regexMatcher struct{ re *regexp2.Regexp }

// maxBacktrack bounds regexp2's backtracking stack (integer slots, 128 MB).
const maxBacktrack = 1 << 24

// regexError is a regex that gave up on a piece (its backtracking stack
// full); Encode turns it into an error.
type regexError struct{ err error }

func compileRegex(pattern string) (regexMatcher, error) {
	re, err := regexp2.Compile(pattern, regexp2.OptionMaxBacktrackingStackSize(maxBacktrack))
	if err != nil {
		return regexMatcher{}, err
	}
	return regexMatcher{re}, nil
}

func (m regexMatcher) find(s string, fn func(start, end int)) {
	idx, err := m.re.FindAllStringIndex(s, -1)
	if err != nil {
		// Only a backtracking-stack overflow gets here, on a pathological
		// piece far beyond any text the bound was sized for.
		panic(regexError{fmt.Errorf("tokenizer: Encode: regex %q on a piece of %d bytes: %w", m.re.String(), len(s), err)})
	}
	for _, p := range idx {
		fn(p[0], p[1])
	}
}

// splitBehavior is what a Split does with the matches of its pattern.
type splitBehavior int

const (
	removed splitBehavior = iota
	isolated
	mergedWithPrevious
	mergedWithNext
	contiguous
)

// span is a byte range of a piece, flagged when the pattern matched it.
type span struct {
	start, end int
	match      bool
}

// splitPieces splits each piece on the matches of m as the library's
// NormalizedString::split does, dropping empty results.
func splitPieces(ps []piece, m matcher, b splitBehavior, invert bool) []piece {
	var out []piece
	var spans []span
	for _, p := range ps {
		spans = spans[:0]
		prev := 0
		m.find(p.s, func(start, end int) {
			if prev != start {
				spans = append(spans, span{prev, start, invert})
			}
			spans = append(spans, span{start, end, !invert})
			prev = end
		})
		if prev != len(p.s) {
			spans = append(spans, span{prev, len(p.s), invert})
		}
		spans = applyBehavior(spans, b)
		for _, sp := range spans {
			if sp.start == sp.end || (b == removed && sp.match) {
				continue
			}
			out = append(out, piece{s: p.s[sp.start:sp.end], first: p.first && sp.start == 0})
		}
	}
	return out
}

// applyBehavior merges or keeps the spans as the behavior says; in the
// result, match marks spans to remove (only for removed).
func applyBehavior(spans []span, b splitBehavior) []span {
	switch b {
	case removed, isolated:
		return spans
	case mergedWithPrevious:
		out := spans[:0:0]
		prevMatch := false
		for _, sp := range spans {
			if sp.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, span{sp.start, sp.end, false})
			}
			prevMatch = sp.match
		}
		return out
	case mergedWithNext:
		var rev []span
		prevMatch := false
		for i := len(spans) - 1; i >= 0; i-- {
			sp := spans[i]
			if sp.match && !prevMatch && len(rev) > 0 {
				rev[len(rev)-1].start = sp.start
			} else {
				rev = append(rev, span{sp.start, sp.end, false})
			}
			prevMatch = sp.match
		}
		for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
			rev[i], rev[j] = rev[j], rev[i]
		}
		return rev
	default: // contiguous
		out := spans[:0:0]
		prevMatch := false
		for _, sp := range spans {
			if sp.match == prevMatch && len(out) > 0 {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, span{sp.start, sp.end, false})
			}
			prevMatch = sp.match
		}
		return out
	}
}

// splitPre is the Split pre-tokenizer.
type splitPre struct {
	m        matcher
	behavior splitBehavior
	invert   bool
}

func (p splitPre) preTokenize(ps []piece) []piece {
	return splitPieces(ps, p.m, p.behavior, p.invert)
}

// digitsPre is the Digits pre-tokenizer: numeric runes (Rust's
// char::is_numeric: Nd, Nl, No) one by one or in runs.
type digitsPre struct{ individual bool }

func (p digitsPre) preTokenize(ps []piece) []piece {
	b := contiguous
	if p.individual {
		b = isolated
	}
	return splitPieces(ps, runeMatcher(unicode.IsNumber), b, false)
}

// gpt2Pattern is the ByteLevel pre-tokenizer's regex (use_regex).
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// gpt2Matcher is the ByteLevel pre-tokenizer's split, compiled once.
var gpt2Matcher = sync.OnceValue(func() matcher {
	m, err := compileRegex(gpt2Pattern)
	if err != nil {
		panic(err)
	}
	return m
})

// byteLevelPre is the ByteLevel pre-tokenizer: an optional leading space
// on every piece, the GPT-2 split, then each byte written as its printable
// stand-in rune.
type byteLevelPre struct {
	addPrefixSpace bool
	split          matcher // nil: use_regex false
}

func (p byteLevelPre) preTokenize(ps []piece) []piece {
	if p.addPrefixSpace {
		for i := range ps {
			if !strings.HasPrefix(ps[i].s, " ") {
				ps[i].s = " " + ps[i].s
			}
		}
	}
	if p.split != nil {
		ps = splitPieces(ps, p.split, isolated, false)
	}
	for i := range ps {
		ps[i].s = byteLevelString(ps[i].s)
	}
	return ps
}

// byteRune is GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for
// themselves, the others for 256, 257, …
var byteRune, runeByte = func() ([256]rune, map[rune]byte) {
	var br [256]rune
	rb := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			br[b] = rune(b)
		} else {
			br[b] = rune(256 + n)
			n++
		}
		rb[br[b]] = byte(b)
	}
	return br, rb
}()

// byteLevelString writes each byte of s as its stand-in rune.
func byteLevelString(s string) string {
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteRune[s[i]])
	}
	return b.String()
}

// metaspacePre is the Metaspace pre-tokenizer: spaces become the
// replacement rune, which is prepended (always, or only to the piece that
// starts the text, or never) and each word then starts at one.
type metaspacePre struct {
	replacement string
	prepend     string // "always", "first" or "never"
	split       bool
}

func (p metaspacePre) preTokenize(ps []piece) []piece {
	for i := range ps {
		s := strings.ReplaceAll(ps[i].s, " ", p.replacement)
		if !strings.HasPrefix(s, p.replacement) && (p.prepend == "always" || (p.prepend == "first" && ps[i].first)) {
			s = p.replacement + s
		}
		ps[i].s = s
	}
	if !p.split {
		return ps
	}
	return splitPieces(ps, literalMatcher(p.replacement), mergedWithNext, false)
}
