package lmfolder

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// obj is a JSON object that keeps its members' order.
type obj []member

type member struct {
	k string
	v any
}

// pyFloat is a number Python holds as a float (written 10000.0, 1e-05).
type pyFloat float64

// jsonStyle picks the serializer to imitate.
type jsonStyle struct {
	sortKeys    bool // Python's sort_keys=True
	ensureASCII bool // Python's default ensure_ascii: non-ASCII as \uXXXX
}

var (
	// pyConfig is transformers' config and index layout:
	// json.dumps(d, indent=2, sort_keys=True) + "\n".
	pyConfig = jsonStyle{sortKeys: true, ensureASCII: true}
	// pyTokConfig is tokenizer_config.json's: the same without ensure_ascii.
	pyTokConfig = jsonStyle{sortKeys: true}
	// serde is the tokenizers library's tokenizer.json (serde_json pretty):
	// members in declaration order, raw UTF-8.
	serde = jsonStyle{}
)

// marshal renders v indented by two spaces, with a final newline when nl.
func (st jsonStyle) marshal(v any, nl bool) []byte {
	var b strings.Builder
	st.write(&b, v, "")
	if nl {
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func (st jsonStyle) write(b *strings.Builder, v any, ind string) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case pyFloat:
		b.WriteString(pyRepr(float64(x)))
	case string:
		st.quote(b, x)
	case []string:
		a := make([]any, len(x))
		for i, s := range x {
			a[i] = s
		}
		st.write(b, a, ind)
	case []any:
		if len(x) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteString("[")
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n" + ind + "  ")
			st.write(b, e, ind+"  ")
		}
		b.WriteString("\n" + ind + "]")
	case obj:
		if len(x) == 0 {
			b.WriteString("{}")
			return
		}
		if st.sortKeys {
			x = slices.Clone(x)
			slices.SortStableFunc(x, func(p, q member) int { return strings.Compare(p.k, q.k) })
		}
		b.WriteString("{")
		for i, m := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n" + ind + "  ")
			st.quote(b, m.k)
			b.WriteString(": ")
			st.write(b, m.v, ind+"  ")
		}
		b.WriteString("\n" + ind + "}")
	default:
		panic(fmt.Sprintf("lmfolder: cannot write %T as JSON", v))
	}
}

// quote writes s as a JSON string: Python's json escapes (\n, \", \\, \uXXXX
// for other controls, and for non-ASCII under ensureASCII) or serde_json's
// (the same controls, raw UTF-8 otherwise).
func (st jsonStyle) quote(b *strings.Builder, s string) {
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
		case r < 0x20 || st.ensureASCII && r == 0x7f:
			fmt.Fprintf(b, `\u%04x`, r)
		case st.ensureASCII && r > 0x7f && r < 0x10000:
			fmt.Fprintf(b, `\u%04x`, r)
		case st.ensureASCII && r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		case r == utf8.RuneError:
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// pyRepr formats f as Python's repr(float): the shortest round-trip digits,
// positional with at least one decimal when 1e-4 ≤ |f| < 1e16, else
// d.ddde±XX with at least two exponent digits.
func pyRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // -1.2345e+06
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expS, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expS)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
	}
	if exp < 0 {
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	if len(digits) <= exp+1 {
		return sign + digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	}
	return sign + digits[:exp+1] + "." + digits[exp+1:]
}
