package tokenizer

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder is one step of the decoder chain: token strings in, token
// strings out (the library's decode_chain); the results are concatenated.
type decoder interface {
	decode(toks []string) []string
}

// byteLevelDec turns each token's stand-in runes back into bytes (a token
// with a rune outside the map keeps its own bytes) and the whole into one
// string, invalid UTF-8 replaced by U+FFFD.
type byteLevelDec struct{}

func (byteLevelDec) decode(toks []string) []string {
	var b []byte
	for _, t := range toks {
		start := len(b)
		ok := true
		for _, r := range t {
			c, in := runeByte[r]
			if !in {
				ok = false
				break
			}
			b = append(b, c)
		}
		if !ok {
			b = append(b[:start], t...)
		}
	}
	return []string{strings.ToValidUTF8(string(b), "\uFFFD")}
}

// metaspaceDec turns the replacement rune back into spaces; in the first
// token (unless prepend_scheme is "never") it is dropped instead.
type metaspaceDec struct {
	replacement rune
	prepend     bool
}

func (d metaspaceDec) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		var b strings.Builder
		for _, r := range t {
			if r == d.replacement {
				if i == 0 && d.prepend {
					continue
				}
				r = ' '
			}
			b.WriteRune(r)
		}
		out[i] = b.String()
	}
	return out
}

// byteFallbackDec joins runs of <0xHH> tokens into the text their bytes
// spell, or one U+FFFD per byte when they are not valid UTF-8.
type byteFallbackDec struct{}

func (byteFallbackDec) decode(toks []string) []string {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range toks {
		if len(t) == 6 && strings.HasPrefix(t, "<0x") && t[5] == '>' {
			if v, err := strconv.ParseUint(t[3:5], 16, 8); err == nil {
				pending = append(pending, byte(v))
				continue
			}
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// fuseDec concatenates all tokens into one.
type fuseDec struct{}

func (fuseDec) decode(toks []string) []string { return []string{strings.Join(toks, "")} }

// stripDec removes up to start leading and stop trailing copies of a rune
// from each token.
type stripDec struct {
	content     rune
	start, stop int
}

func (d stripDec) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		rs := []rune(t)
		lo := 0
		for lo < d.start && lo < len(rs) && rs[lo] == d.content {
			lo++
		}
		hi := len(rs)
		for len(rs)-hi < d.stop && hi > lo && rs[hi-1] == d.content {
			hi--
		}
		out[i] = string(rs[lo:hi])
	}
	return out
}

// replaceDec replaces a pattern in each token.
type replaceDec struct {
	pat     matcher
	content string
}

func (d replaceDec) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = replaceAll(d.pat, t, d.content)
	}
	return out
}

// postStep is one item of a post-processing template for one sequence:
// fixed special-token ids, or the sequence itself.
type postStep struct {
	ids []int
	seq bool
}
