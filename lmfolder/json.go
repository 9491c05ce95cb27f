package lmfolder

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"peftbench/internal/pyfmt"
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
		b.WriteString(pyfmt.JSONFloat(float64(x)))
	case string:
		pyfmt.Quote(b, x, st.ensureASCII)
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
			pyfmt.Quote(b, m.k, st.ensureASCII)
			b.WriteString(": ")
			st.write(b, m.v, ind+"  ")
		}
		b.WriteString("\n" + ind + "}")
	default:
		panic(fmt.Sprintf("lmfolder: cannot write %T as JSON", v))
	}
}
