package pyfmt

import (
	"math"
	"testing"
)

// TestRepr pins floats to CPython 3's repr (the values MLflow's metric
// files and config.json hold): catches Go's spellings (1e-5, 0.00001,
// 10000 for a float, 1e+06).
func TestRepr(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {1, "1.0"}, {-2.5, "-2.5"}, {0.1, "0.1"}, {1e-4, "0.0001"},
		{1e-5, "1e-05"}, {1e-6, "1e-06"}, {1.5e-7, "1.5e-07"}, {-2.5e-7, "-2.5e-07"}, {0.02, "0.02"},
		{10000, "10000.0"}, {1e6, "1000000.0"}, {123.456, "123.456"}, {123456789012345.0, "123456789012345.0"},
		{9999999999999998, "9999999999999998.0"}, {1e16, "1e+16"}, {1.2345e20, "1.2345e+20"}, {1.5e300, "1.5e+300"},
		{2.0 / 3, "0.6666666666666666"}, {5e-324, "5e-324"}, {1e100, "1e+100"},
		{math.NaN(), "nan"}, {math.Inf(1), "inf"}, {math.Inf(-1), "-inf"},
	} {
		if got := Repr(tc.v); got != tc.want {
			t.Errorf("Repr(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	for _, tc := range []struct {
		v    float64
		want string
	}{{math.NaN(), "NaN"}, {math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"}, {1e-5, "1e-05"}} {
		if got := JSONFloat(tc.v); got != tc.want {
			t.Errorf("JSONFloat(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// TestQuote: json.dumps' escapes (CPython 3), with and without
// ensure_ascii; catches encoding/json's \u003c for '<' and a missing
// surrogate pair.
func TestQuote(t *testing.T) {
	for _, tc := range []struct {
		s     string
		ascii bool
		want  string
	}{
		{`a"b\c`, true, `"a\"b\\c"`},
		{"l1\nl2\r\t\b\f", true, `"l1\nl2\r\t\b\f"`},
		{"\x01\x1f", false, `"\u0001\u001f"`},
		{"<&>", true, `"<&>"`},
		{"é\x7f", true, `"\u00e9\u007f"`},
		{"é\x7f", false, "\"é\x7f\""},
		{"Ġthe ▁", true, `"\u0120the \u2581"`},
		{"😀", true, `"\ud83d\ude00"`},
		{"😀", false, `"😀"`},
	} {
		if got := QuoteString(tc.s, tc.ascii); got != tc.want {
			t.Errorf("QuoteString(%q, %v) = %s, want %s", tc.s, tc.ascii, got, tc.want)
		}
	}
}
