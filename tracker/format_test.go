package tracker

import (
	"math"
	"testing"
)

// TestPyFloat: metric values are written as Python's repr(float), what
// MLflow's own writer puts in a metric file (values from CPython 3).
func TestPyFloat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0.0"}, {1, "1.0"}, {-2.5, "-2.5"}, {0.1, "0.1"}, {1e-4, "0.0001"},
		{1e-5, "1e-05"}, {1.5e-7, "1.5e-07"}, {123456789012345.0, "123456789012345.0"},
		{1e16, "1e+16"}, {1.2345e20, "1.2345e+20"}, {0.003, "0.003"},
		{2.0 / 3, "0.6666666666666666"}, {math.NaN(), "nan"}, {math.Inf(1), "inf"}, {math.Inf(-1), "-inf"},
		{5e-324, "5e-324"}, {1e100, "1e+100"},
	} {
		if got := PyFloat(tc.v); got != tc.want {
			t.Errorf("PyFloat(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// TestYAMLString: a value is plain only where YAML reads it back as the
// same string; numbers, booleans, nulls and dates as strings are quoted.
func TestYAMLString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"track", "track"}, {"0", "'0'"}, {"133783603920654495", "'133783603920654495'"},
		{"3fa2b1", "3fa2b1"}, {"1.5", "'1.5'"}, {"1e5", "1e5"}, {"yes", "'yes'"}, {"Off", "'Off'"},
		{"null", "'null'"}, {"", "''"}, {"a b", "'a b'"}, {"it's", "'it''s'"},
		{"file:///tmp/x/mlruns/0", "file:///tmp/x/mlruns/0"}, {"key:", "'key:'"},
		{"2026-01-02", "'2026-01-02'"}, {"line\nbreak", `"line\nbreak"`}, {"#x", "'#x'"},
		{"lora r=4 lr=1e-3", "'lora r=4 lr=1e-3'"},
	} {
		if got := yamlString(tc.in); got != tc.want {
			t.Errorf("yamlString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestMaskedCRC: TFRecord's masked CRC32C of a known record header, and
// the CRC32C check value, so a wrong table or mask fails here too
// (independently of the Python reader).
func TestMaskedCRC(t *testing.T) {
	// crc32c("123456789") = 0xe3069283; masked: rotate right 15, add the constant.
	c := uint32(0xe3069283)
	want := (c>>15 | c<<17) + 0xa282ead8
	if got := maskedCRC([]byte("123456789")); got != want {
		t.Errorf("maskedCRC = %#x, want %#x", got, want)
	}
}

// TestMetricKey: keys MLflow would refuse become valid file paths.
func TestMetricKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"train/loss", "train/loss"}, {"<script>", "_script_"}, {"a/../b", "a/__/b"},
		{"/x", "_/x"}, {"é", "_"}, {"lr 1", "lr 1"},
	} {
		if got := metricKey(tc.in); got != tc.want {
			t.Errorf("metricKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
