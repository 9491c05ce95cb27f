package analysis

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONNonFinite(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"missing comparison", Compare([]float64{1, 2, 3}, nil, CompareOptions{}), `"p":null`},
		{"verdict text", Compare([]float64{1, 2, 3}, nil, CompareOptions{}), `"verdict":"regressed"`},
		{"empty summary", Summarize(nil), `"mean":null`},
		{"fit r2", &Fit{Form: "linear", R2: 0.5}, `"r2":0.5`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %s lacks %s", tc.name, b, tc.want)
		}
	}
}
