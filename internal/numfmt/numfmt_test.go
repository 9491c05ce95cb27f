package numfmt

import "testing"

func TestShortFloat(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{{1e-3, "1e-3"}, {3e-4, "3e-4"}, {0.02, "0.02"}, {16, "16"}, {0, "0"}, {2.5e6, "2.5e6"}, {-1e-5, "-1e-5"}} {
		if got := ShortFloat(c.in); got != c.want {
			t.Errorf("ShortFloat(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
