package analysis

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func draw(rng *rand.Rand, n int, mean, sd float64) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = mean + sd*rng.NormFloat64()
	}
	return xs
}

func TestCompare(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	base := draw(rng, 5, 0.80, 0.008)
	for _, tc := range []struct {
		name    string
		base    []float64
		cur     []float64
		higher  bool
		want    Verdict
		warning string
	}{
		{"accuracy-drop-10pct", base, draw(rng, 5, 0.72, 0.008), true, Regressed, ""},
		{"accuracy-gain-10pct", base, draw(rng, 5, 0.88, 0.008), true, Improved, ""},
		{"loss-up-10pct", base, draw(rng, 5, 0.88, 0.008), false, Regressed, ""},
		{"loss-down-10pct", base, draw(rng, 5, 0.72, 0.008), false, Improved, ""},
		{"redrawn", base, draw(rng, 5, 0.80, 0.008), true, Same, ""},
		{"tiny-significant-shift", base, draw(rng, 5, 0.81, 0.0001), true, Same, ""}, // below MinEffect
		{"n=2", base[:2], []float64{0.5, 0.51}, true, Insufficient, "too few seeds"},
		{"missing", base, nil, true, Regressed, "missing"},
		{"new", nil, base, true, Insufficient, "not in the baseline"},
	} {
		c := Compare(tc.base, tc.cur, CompareOptions{HigherIsBetter: tc.higher})
		if c.Verdict != tc.want {
			t.Errorf("%s: verdict %v (Δ=%.3f p=%.4f), want %v", tc.name, c.Verdict, c.Delta, c.P, tc.want)
		}
		if tc.warning != "" && !slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.Contains(w, tc.warning) }) {
			t.Errorf("%s: warnings %q, want %q", tc.name, c.Warnings, tc.warning)
		}
	}
}

// TestCompareFalsePositives redraws both runs from one distribution many
// times: the share flagged at all must stay below α even with no minimum
// effect, and at the defaults nothing is flagged.
func TestCompareFalsePositives(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	const trials = 2000
	flaggedTest, flaggedDefault := 0, 0
	for range trials {
		b, c := draw(rng, 5, 0.8, 0.01), draw(rng, 5, 0.8, 0.01)
		if Compare(b, c, CompareOptions{HigherIsBetter: true, MinEffect: 1e-12}).Verdict != Same {
			flaggedTest++
		}
		if Compare(b, c, CompareOptions{HigherIsBetter: true}).Verdict != Same {
			flaggedDefault++
		}
	}
	if rate := float64(flaggedTest) / trials; rate > 0.05 || rate < 0.01 {
		t.Errorf("U test alone flags %.3f of null comparisons; the exact level for 5 v 5 at α=0.05 is 8/252 ≈ 0.032", rate)
	}
	if flaggedDefault != 0 {
		t.Errorf("defaults flag %d of %d null comparisons", flaggedDefault, trials)
	}
}

func TestMinExactP(t *testing.T) {
	for _, tc := range []struct {
		n1, n2 int
		want   float64
	}{{2, 2, 1.0 / 3}, {3, 3, 0.1}, {5, 5, 2.0 / 252}, {1, 1, 1}} {
		if got := minExactP(tc.n1, tc.n2); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("minExactP(%d,%d) = %v, want %v", tc.n1, tc.n2, got, tc.want)
		}
	}
}
