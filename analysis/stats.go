package analysis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat"
)

// Bootstrap settings shared by Summarize and the fits: the resample count
// and the fixed seed that makes every interval reproducible.
const (
	bootstrapResamples = 2000
	bootstrapSeed      = 0x600d5eed
)

// Summary describes a metric across seeds.
type Summary struct {
	N        int      `json:"n"`
	Mean     float64  `json:"mean"`
	SD       float64  `json:"sd"`    // sample standard deviation (n−1)
	CILo     float64  `json:"ci_lo"` // percentile bootstrap 95% CI of the mean
	CIHi     float64  `json:"ci_hi"`
	Warnings []string `json:"warnings,omitempty"`
}

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
		s.Mean, s.SD, s.CILo, s.CIHi = math.NaN(), math.NaN(), math.NaN(), math.NaN()
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
	return s
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
