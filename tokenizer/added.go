package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	id                         int
	content                    string
	special, normalized        bool
	singleWord, lstrip, rstrip bool
	pattern                    string // what is matched: content, normalized when normalized
}

// addedVocab finds added tokens in text the way the library's
// AddedVocabulary does: an Aho-Corasick search with leftmost-longest
// semantics, once over the raw text for tokens with normalized=false and
// once over each normalized piece for tokens with normalized=true.
type addedVocab struct {
	byContent map[string]int
	byID      map[int]*addedToken
	raw, norm matcherSet
}

// matcherSet holds the patterns of one search, indexed by first byte,
// longest first, so the first hit at a position is the longest.
type matcherSet struct {
	byFirst [256][]*addedToken
	any     bool
}

func (m *matcherSet) add(t *addedToken) {
	if t.pattern == "" {
		return
	}
	b := t.pattern[0]
	l := m.byFirst[b]
	i := len(l)
	for i > 0 && len(l[i-1].pattern) < len(t.pattern) {
		i--
	}
	l = append(l, nil)
	copy(l[i+1:], l[i:])
	l[i] = t
	m.byFirst[b] = l
	m.any = true
}

// longest is the longest pattern starting at text[i:], nil when none.
func (m *matcherSet) longest(text string, i int) *addedToken {
	for _, t := range m.byFirst[text[i]] {
		if len(text)-i >= len(t.pattern) && text[i:i+len(t.pattern)] == t.pattern {
			return t
		}
	}
	return nil
}

// segment is a byte range of the searched text: an added token (id ≥ 0)
// or text to tokenize (id = -1).
type segment struct {
	start, end, id int
}

// split cuts text into added-token and plain segments, covering it whole.
// Matches are leftmost-longest and non-overlapping; a single_word token
// next to a word character is skipped (and the search resumes after it,
// as Aho-Corasick's iterator does); lstrip and rstrip widen the token's
// segment over the whitespace beside it, never into an earlier match.
func (a *addedVocab) split(text string, normalized bool) []segment {
	set := &a.raw
	if normalized {
		set = &a.norm
	}
	if !set.any {
		return []segment{{0, len(text), -1}}
	}
	var segs []segment
	startOffset := 0
	for i := 0; i < len(text); {
		t := set.longest(text, i)
		if t == nil {
			i++
			continue
		}
		start, stop := i, i+len(t.pattern)
		i = stop
		if t.singleWord {
			if (start > 0 && endsWithWord(text[:start])) || (stop < len(text) && startsWithWord(text[stop:])) {
				continue
			}
		}
		if t.lstrip {
			start = max(leftmostSpaceAtEnd(text[:start]), startOffset)
		}
		if t.rstrip {
			stop += rightmostSpaceAtStart(text[stop:])
			i = stop
		}
		if startOffset < start {
			segs = append(segs, segment{startOffset, start, -1})
		}
		segs = append(segs, segment{start, stop, t.id})
		startOffset = stop
	}
	if startOffset != len(text) || len(segs) == 0 {
		segs = append(segs, segment{startOffset, len(text), -1})
	}
	return segs
}

// isWordRune is Rust regex's Unicode \w: alphabetic, marks, decimal
// digits, connector punctuation and the joiners.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) ||
		unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Other_Alphabetic, r) ||
		r == 0x200C || r == 0x200D
}

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return isWordRune(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return isWordRune(r)
}

// leftmostSpaceAtEnd is where the run of whitespace ending s starts.
func leftmostSpaceAtEnd(s string) int {
	i := len(s)
	for i > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:i])
		if !unicode.IsSpace(r) {
			break
		}
		i -= n
	}
	return i
}

// rightmostSpaceAtStart is the length of the run of whitespace starting s.
func rightmostSpaceAtStart(s string) int {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	return i
}
