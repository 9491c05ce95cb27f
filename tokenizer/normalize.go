package tokenizer

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites a piece of text before pre-tokenization.
type normalizer interface {
	normalize(s string) string
}

// unicodeNorm is NFC, NFD, NFKC or NFKD.
type unicodeNorm struct{ form norm.Form }

func (n unicodeNorm) normalize(s string) string { return n.form.String(s) }

// prependNorm puts a string before every non-empty piece (the older
// Llama 2 files put "▁" this way).
type prependNorm struct{ prefix string }

func (n prependNorm) normalize(s string) string {
	if s == "" {
		return s
	}
	return n.prefix + s
}

// replaceNorm replaces every match of a pattern (a literal string or a
// regex) by content.
type replaceNorm struct {
	pat     matcher
	content string
}

func (n replaceNorm) normalize(s string) string { return replaceAll(n.pat, s, n.content) }

// replaceAll replaces every non-empty match of pat in s by content.
func replaceAll(pat matcher, s, content string) string {
	if lit, ok := pat.(literalMatcher); ok {
		return strings.ReplaceAll(s, string(lit), content)
	}
	var b strings.Builder
	prev := 0
	pat.find(s, func(start, end int) {
		b.WriteString(s[prev:start])
		b.WriteString(content)
		prev = end
	})
	if prev == 0 {
		return s
	}
	b.WriteString(s[prev:])
	return b.String()
}

// lowercaseNorm lowercases rune by rune as Rust's char::to_lowercase does
// (no context rules; İ becomes i + combining dot above).
type lowercaseNorm struct{}

func (lowercaseNorm) normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r == 'İ' {
			b.WriteString("i\u0307")
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// stripNorm removes leading and/or trailing whitespace.
type stripNorm struct{ left, right bool }

func (n stripNorm) normalize(s string) string {
	if n.left {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	if n.right {
		s = strings.TrimRightFunc(s, unicode.IsSpace)
	}
	return s
}

// seqNorm applies normalizers in order.
type seqNorm []normalizer

func (q seqNorm) normalize(s string) string {
	for _, n := range q {
		s = n.normalize(s)
	}
	return s
}
