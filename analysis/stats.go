package analysis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Bootstrap settings shared by Summarize and the fits: the resample count
// and the fixed seed that makes every interval reproducible.
const (
	bootstrapResamples = 2000
	bootstrapSeed      = 0x600d5eed
)

// Summary describes a metric across seeds.
type Summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`    // sample standard deviation (n−1)
	CILo float64 `json:"ci_lo"` // percentile bootstrap 95% CI of the mean
	CIHi float64 `json:"ci_hi"`
	// TLo and THi are the Student-t 95% CI of the mean, mean ± t·SD/√n
	// (NaN below 2 values): with fewer than SmallN seeds the bootstrap's
	// resamples take few distinct values and its interval is too narrow,
	// so Interval prefers this one there.
	TLo      float64  `json:"-"`
	THi      float64  `json:"-"`
	Warnings []string `json:"warnings,omitempty"`
}

// SmallN is the seed count below which Interval gives the Student-t
// interval instead of the bootstrap's.
const SmallN = 5

// Interval returns the 95% CI of the mean a reader should see: the
// Student-t interval when 2 ≤ N < SmallN, else the percentile bootstrap
// (IntervalMethod names which).
func (s Summary) Interval() (lo, hi float64) {
	if s.N >= 2 && s.N < SmallN {
		return s.TLo, s.THi
	}
	return s.CILo, s.CIHi
}

// IntervalMethod names the interval Interval gives for n values.
func IntervalMethod(n int) string {
	if n >= 2 && n < SmallN {
		return "Student-t"
	}
	return "percentile bootstrap"
}

// IntervalNote is the sentence captions and tables use to say which 95%
// CI they show.
const IntervalNote = "95% CIs of the mean are Student-t intervals with fewer than 5 seeds, percentile-bootstrap intervals otherwise"

// Summarize returns the mean, standard deviation and a bootstrap 95%
// confidence interval of the mean of xs. NaNs are dropped with a warning;
// fewer than 3 values give a warning, not an error.
func Summarize(xs []float64) Summary {
	var s Summary
	clean := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			clean = append(clean, x)
		}
	}
	if d := len(xs) - len(clean); d > 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%d NaN values dropped", d))
	}
	s.N = len(clean)
	switch {
	case s.N == 0:
		s.Mean, s.SD, s.CILo, s.CIHi, s.TLo, s.THi = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		s.Warnings = append(s.Warnings, "no values")
		return s
	case s.N < 3:
		s.Warnings = append(s.Warnings, fmt.Sprintf("only %d seeds: the interval is not meaningful", s.N))
	}
	s.Mean = stat.Mean(clean, nil)
	s.SD = math.NaN()
	if s.N > 1 {
		s.SD = stat.StdDev(clean, nil)
	}
	s.CILo, s.CIHi = bootstrapMeanCI(clean, 0.95)
	s.TLo, s.THi = TInterval(clean, 0.95)
	return s
}

// TQuantile is the p quantile of Student's t distribution with df degrees
// of freedom (t_{0.975, 2} = 4.302653).
func TQuantile(p, df float64) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(p)
}

// TInterval is the Student-t confidence interval of the mean of xs at the
// given level, mean ± t_{(1+level)/2, n−1}·SD/√n; NaN for fewer than two
// values.
func TInterval(xs []float64, level float64) (lo, hi float64) {
	n := len(xs)
	if n < 2 {
		return math.NaN(), math.NaN()
	}
	m, sd := stat.MeanStdDev(xs, nil)
	h := TQuantile((1+level)/2, float64(n-1)) * sd / math.Sqrt(float64(n))
	return m - h, m + h
}

// bootstrapMeanCI is the percentile bootstrap interval of the mean.
func bootstrapMeanCI(xs []float64, level float64) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(bootstrapSeed, uint64(len(xs))))
	means := make([]float64, bootstrapResamples)
	for b := range means {
		sum := 0.0
		for range xs {
			sum += xs[rng.IntN(len(xs))]
		}
		means[b] = sum / float64(len(xs))
	}
	return percentileInterval(means, level)
}

// percentileInterval returns the (1−level)/2 and (1+level)/2 empirical
// quantiles of v (sorted in place).
func percentileInterval(v []float64, level float64) (lo, hi float64) {
	sortFloats(v)
	a := (1 - level) / 2
	return stat.Quantile(a, stat.LinInterp, v, nil), stat.Quantile(1-a, stat.LinInterp, v, nil)
}

func sortFloats(v []float64) { slices.Sort(v) }
