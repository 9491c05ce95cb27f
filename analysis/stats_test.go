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

// TestTQuantile checks Student-t quantiles against the published table
// values (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2).
func TestTQuantile(t *testing.T) {
	for _, tc := range []struct {
		p, df, want float64
	}{
		{0.975, 1, 12.706205},
		{0.975, 2, 4.302653},
		{0.975, 3, 3.182446},
		{0.975, 4, 2.776445},
		{0.975, 9, 2.262157},
		{0.95, 4, 2.131847},
		{0.5, 3, 0},
	} {
		if got := TQuantile(tc.p, tc.df); math.Abs(got-tc.want) > 1e-5 {
			t.Errorf("TQuantile(%g, %g) = %.6f, want %.6f", tc.p, tc.df, got, tc.want)
		}
	}
}

func TestTInterval(t *testing.T) {
	for _, tc := range []struct {
		xs     []float64
		lo, hi float64
	}{
		// mean 2, SD 1, n 3: 2 ± 4.302653/√3.
		{[]float64{1, 2, 3}, 2 - 4.302653/math.Sqrt(3), 2 + 4.302653/math.Sqrt(3)},
		// mean 3, SD √2.5, n 5: 3 ± 2.776445·√(2.5/5).
		{[]float64{1, 2, 3, 4, 5}, 3 - 2.776445*math.Sqrt(0.5), 3 + 2.776445*math.Sqrt(0.5)},
		{[]float64{4, 4}, 4, 4},
		{[]float64{1}, math.NaN(), math.NaN()},
	} {
		lo, hi := TInterval(tc.xs, 0.95)
		if !close6(lo, tc.lo) || !close6(hi, tc.hi) {
			t.Errorf("TInterval(%v) = [%g, %g], want [%g, %g]", tc.xs, lo, hi, tc.lo, tc.hi)
		}
	}
	// Interval: t below SmallN seeds, bootstrap from SmallN on.
	small, big := Summarize([]float64{1, 2, 3}), Summarize([]float64{1, 2, 3, 4, 5})
	if lo, hi := small.Interval(); lo != small.TLo || hi != small.THi || IntervalMethod(3) != "Student-t" {
		t.Errorf("3 seeds: Interval [%g, %g], want the t interval [%g, %g]", lo, hi, small.TLo, small.THi)
	}
	if lo, hi := big.Interval(); lo != big.CILo || hi != big.CIHi || IntervalMethod(5) != "percentile bootstrap" {
		t.Errorf("5 seeds: Interval [%g, %g], want the bootstrap [%g, %g]", lo, hi, big.CILo, big.CIHi)
	}
	// With 3 seeds the bootstrap interval is far narrower than the t one.
	if !(small.THi-small.TLo > 2*(small.CIHi-small.CILo)) {
		t.Errorf("3 seeds: t width %g, bootstrap %g", small.THi-small.TLo, small.CIHi-small.CILo)
	}
}

func close6(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-6*max(1, math.Abs(b))
}
