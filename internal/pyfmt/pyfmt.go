// Package pyfmt is the one home of Python's spellings that files written
// for Python tools must match byte for byte: repr(float) (MLflow's metric
// lines and params), json.dumps' floats and strings (Hugging Face's
// config.json, tokenizer.json and safetensors index files).
package pyfmt

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Repr formats f as Python's repr(float) (and str(float)): the shortest
// digits that round-trip, positional with at least one decimal when
// 1e-4 ≤ |f| < 1e16, else d.ddde±XX with at least two exponent digits;
// nan, inf, -inf.
func Repr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±XX
	mant, exps, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(exps)
	if exp < -4 || exp >= 16 {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// JSONFloat formats f as json.dumps does: Repr, with NaN, Infinity and
// -Infinity for the values JSON has no number for.
func JSONFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return Repr(f)
}

// Quote writes s to b as a JSON string the way json.dumps does (\n, \r,
// \t, \b, \f, \" and \\, \u00XX for other control characters), and with
// ensureASCII (json.dumps' default) every non-ASCII rune and DEL as \uXXXX
// (surrogate pairs above U+FFFF). Without it, non-ASCII stays raw UTF-8,
// as serde_json (the tokenizers library) writes it.
func Quote(b *strings.Builder, s string, ensureASCII bool) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || ensureASCII && r > 0x7e && r < 0x10000:
			fmt.Fprintf(b, `\u%04x`, r)
		case ensureASCII && r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// QuoteString is Quote into a new string.
func QuoteString(s string, ensureASCII bool) string {
	var b strings.Builder
	Quote(&b, s, ensureASCII)
	return b.String()
}
