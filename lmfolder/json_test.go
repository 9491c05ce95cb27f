package lmfolder

import (
	"testing"

	"peftbench/internal/pyfmt"
)

// TestPyRepr pins floats to Python's repr, which config.json uses:
// catches Go's spellings (1e-5, 0.00001, 10000 for a float, 1e+06).
func TestPyRepr(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{
		{1e-5, "1e-05"}, {1e-6, "1e-06"}, {0.02, "0.02"}, {0.1, "0.1"}, {0.0001, "0.0001"},
		{10000, "10000.0"}, {1e6, "1000000.0"}, {1e16, "1e+16"}, {123.456, "123.456"},
		{-2.5e-7, "-2.5e-07"}, {0, "0.0"}, {1.5e300, "1.5e+300"}, {9999999999999998, "9999999999999998.0"},
	} {
		if got := pyfmt.JSONFloat(c.f); got != c.want {
			t.Errorf("JSONFloat(%v) = %s, want %s", c.f, got, c.want)
		}
	}
}
