package analysis

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{1, 2, 3, 4, 5})
	if s.N != 5 || s.Mean != 3 || math.Abs(s.SD-math.Sqrt(2.5)) > 1e-12 || len(s.Warnings) != 0 {
		t.Errorf("Summarize(1..5) = %+v", s)
	}
	if !(s.CILo < 3 && 3 < s.CIHi && s.CILo >= 1 && s.CIHi <= 5) {
		t.Errorf("CI [%v, %v] does not bracket the mean inside the data range", s.CILo, s.CIHi)
	}
	if again := Summarize([]float64{1, 2, 3, 4, 5}); again.CILo != s.CILo || again.CIHi != s.CIHi {
		t.Error("bootstrap CI is not deterministic")
	}
	for _, tc := range []struct {
		xs   []float64
		warn string
	}{
		{[]float64{1, 2}, "only 2 seeds"},
		{[]float64{1}, "only 1 seeds"},
		{nil, "no values"},
		{[]float64{1, math.NaN(), 2, 3}, "1 NaN values dropped"},
	} {
		s := Summarize(tc.xs)
		if !slices.ContainsFunc(s.Warnings, func(w string) bool { return strings.Contains(w, tc.warn) }) {
			t.Errorf("Summarize(%v): warnings %q, want %q", tc.xs, s.Warnings, tc.warn)
		}
	}
}

// TestSummarizeCoverage checks the bootstrap 95% CI of the mean covers the
// true mean about 95% of the time.
func TestSummarizeCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const trials = 300
	hit := 0
	for range trials {
		xs := make([]float64, 30)
		for i := range xs {
			xs[i] = 2 + rng.NormFloat64()
		}
		if s := Summarize(xs); s.CILo <= 2 && 2 <= s.CIHi {
			hit++
		}
	}
	if cov := float64(hit) / trials; cov < 0.88 || cov > 0.99 {
		t.Errorf("coverage %.3f, want ≈ 0.95", cov)
	}
}

func TestMannWhitneyKnown(t *testing.T) {
	// Exact two-sided p-values from the null distribution of U (tables in
	// e.g. Siegel & Castellan; scipy.stats.mannwhitneyu(method="exact")).
	for _, tc := range []struct {
		name  string
		x, y  []float64
		u, p  float64
		exact bool
	}{
		{"5v5-separated", []float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 0, 2.0 / 252, true},
		{"5v5-reversed", []float64{6, 7, 8, 9, 10}, []float64{1, 2, 3, 4, 5}, 25, 2.0 / 252, true},
		{"3v3-separated", []float64{1, 2, 3}, []float64{4, 5, 6}, 0, 0.1, true},
		{"4v4-separated", []float64{1, 2, 3, 4}, []float64{5, 6, 7, 8}, 0, 2.0 / 70, true},
		// U=1 for 4v4: P(U ≤ 1) = 2/70, two-sided 4/70.
		{"4v4-U1", []float64{1, 2, 3, 5}, []float64{4, 6, 7, 8}, 1, 4.0 / 70, true},
		{"2v2", []float64{1, 2}, []float64{3, 4}, 0, 1.0 / 3, true},
		{"identical", []float64{1, 1, 1}, []float64{1, 1, 1}, 4.5, 1, true},
	} {
		got, err := MannWhitney(tc.x, tc.y)
		if err != nil {
			t.Fatal(err)
		}
		if got.U != tc.u || math.Abs(got.P-tc.p) > 1e-12 || got.Exact != tc.exact {
			t.Errorf("%s: got %+v, want U=%v p=%v", tc.name, got, tc.u, tc.p)
		}
	}
	if _, err := MannWhitney(nil, []float64{1}); err == nil {
		t.Error("no error for an empty sample")
	}
}

// TestMannWhitneyTiesBruteForce checks the exact p-value with ties against
// enumeration of every assignment of the pooled values to the two samples.
func TestMannWhitneyTiesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for trial := range 40 {
		n1, n2 := 2+rng.IntN(5), 2+rng.IntN(5)
		x, y := make([]float64, n1), make([]float64, n2)
		for i := range x {
			x[i] = float64(rng.IntN(4)) // many ties
		}
		for i := range y {
			y[i] = float64(rng.IntN(4) + trial%2)
		}
		got, err := MannWhitney(x, y)
		if err != nil {
			t.Fatal(err)
		}
		want := bruteForceP(x, y)
		if math.Abs(got.P-want) > 1e-12 {
			t.Errorf("x=%v y=%v: p=%v, brute force %v", x, y, got.P, want)
		}
	}
}

// bruteForceP computes U by pair counting for every subset of the pooled
// sample and returns min(1, 2·min(P(U ≤ u), P(U ≥ u))).
func bruteForceP(x, y []float64) float64 {
	pool := slices.Concat(x, y)
	n, n1 := len(pool), len(x)
	uOf := func(a, b []float64) float64 {
		u := 0.0
		for _, ai := range a {
			for _, bj := range b {
				switch {
				case ai > bj:
					u++
				case ai == bj:
					u += 0.5
				}
			}
		}
		return u
	}
	u0 := uOf(x, y)
	var le, ge, all float64
	for mask := 0; mask < 1<<n; mask++ {
		var a, b []float64
		for i := range n {
			if mask&(1<<i) != 0 {
				a = append(a, pool[i])
			} else {
				b = append(b, pool[i])
			}
		}
		if len(a) != n1 {
			continue
		}
		u := uOf(a, b)
		all++
		if u <= u0+1e-9 {
			le++
		}
		if u >= u0-1e-9 {
			ge++
		}
	}
	return min(1, 2*min(le, ge)/all)
}

// TestMannWhitneyNormal checks the large-sample approximation against the
// exact distribution at n = 40 + 40.
func TestMannWhitneyNormal(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, shift := range []float64{0, 0.3, 0.6} {
		x, y := make([]float64, 40), make([]float64, 40)
		for i := range x {
			x[i] = math.Round(rng.NormFloat64()*4) / 4 // ties
			y[i] = math.Round((rng.NormFloat64()+shift)*4) / 4
		}
		got, err := MannWhitney(x, y)
		if err != nil {
			t.Fatal(err)
		}
		if got.Exact {
			t.Fatal("80 values used the exact path")
		}
		r, _ := doubledRanks(x, y)
		r1 := 0
		for _, v := range r[:40] {
			r1 += v
		}
		lo, hi := rankSumTails(r, 40, r1)
		exact := min(1, 2*min(lo, hi))
		if math.Abs(got.P-exact) > 0.01 {
			t.Errorf("shift %v: normal p=%v, exact %v", shift, got.P, exact)
		}
	}
}
