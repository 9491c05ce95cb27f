package tracker

import "testing"

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
