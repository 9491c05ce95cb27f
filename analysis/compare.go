package analysis

import (
	"fmt"
	"math"
)

// Verdict is the outcome of comparing a metric between two runs.
type Verdict int

const (
	// Same: no significant change of at least the minimum effect ("~").
	Same Verdict = iota
	// Improved: significantly better by at least the minimum effect.
	Improved
	// Regressed: significantly worse by at least the minimum effect, or
	// present in the baseline and missing from the current run.
	Regressed
	// Insufficient: too few samples for the test to reach the level; a
	// warning, never a failure.
	Insufficient
)

func (v Verdict) String() string {
	switch v {
	case Same:
		return "~"
	case Improved:
		return "improved"
	case Regressed:
		return "regressed"
	case Insufficient:
		return "insufficient"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// MarshalText encodes the verdict as its String form.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// CompareOptions configures Compare.
type CompareOptions struct {
	HigherIsBetter bool
	Alpha          float64 // significance level; default 0.05
	MinEffect      float64 // minimum relative change of the median; default 0.05 (5%)
}

// Comparison is one row of a benchstat-style table.
type Comparison struct {
	BaseN    int      `json:"base_n"`
	CurN     int      `json:"cur_n"`
	BaseMed  float64  `json:"base_median"`
	CurMed   float64  `json:"cur_median"`
	Delta    float64  `json:"delta"` // (CurMed − BaseMed)/|BaseMed|; ±Inf when BaseMed is 0
	P        float64  `json:"p"`     // two-sided Mann–Whitney p-value; NaN when not tested
	Verdict  Verdict  `json:"verdict"`
	Warnings []string `json:"warnings,omitempty"`
}

// Compare compares the seeds of a metric in a baseline and a current run
// with a two-sided Mann–Whitney U test: a change is reported when p < Alpha
// and the medians differ by at least MinEffect relative to the baseline.
// A metric present in the baseline but missing from the current run is a
// regression. Sample sizes for which the test cannot reach Alpha (n = 2
// against 2 gives p ≥ 1/3) give Insufficient with a warning.
func Compare(baseline, current []float64, opt CompareOptions) Comparison {
	if opt.Alpha == 0 {
		opt.Alpha = 0.05
	}
	if opt.MinEffect == 0 {
		opt.MinEffect = 0.05
	}
	c := Comparison{BaseN: len(baseline), CurN: len(current), P: math.NaN(),
		BaseMed: median(baseline), CurMed: median(current), Delta: math.NaN()}
	switch {
	case len(baseline) > 0 && len(current) == 0:
		c.Verdict = Regressed
		c.Warnings = append(c.Warnings, "missing from the current run")
		return c
	case len(baseline) == 0:
		c.Verdict = Insufficient
		c.Warnings = append(c.Warnings, "not in the baseline")
		return c
	}
	switch {
	case c.BaseMed != 0:
		c.Delta = (c.CurMed - c.BaseMed) / math.Abs(c.BaseMed)
	case c.CurMed == 0:
		c.Delta = 0
	default:
		c.Delta = math.Inf(int(math.Copysign(1, c.CurMed)))
	}
	if c.BaseN < 3 || c.CurN < 3 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("too few seeds (%d vs %d)", c.BaseN, c.CurN))
	}
	if minExactP(c.BaseN, c.CurN) >= opt.Alpha {
		c.Verdict = Insufficient
		c.Warnings = append(c.Warnings, fmt.Sprintf("the test cannot reach α = %g with %d vs %d seeds", opt.Alpha, c.BaseN, c.CurN))
		return c
	}
	u, err := MannWhitney(baseline, current)
	if err != nil {
		c.Verdict = Insufficient
		c.Warnings = append(c.Warnings, err.Error())
		return c
	}
	c.P = u.P
	if c.P >= opt.Alpha || math.Abs(c.Delta) < opt.MinEffect {
		c.Verdict = Same
		return c
	}
	if (c.Delta > 0) == opt.HigherIsBetter {
		c.Verdict = Improved
	} else {
		c.Verdict = Regressed
	}
	return c
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sortFloats(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
