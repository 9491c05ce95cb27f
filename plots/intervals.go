package plots

import (
	"fmt"

	"peftbench/analysis"
)

// ciNote says which 95% CI the task's figures and table show over seeds
// (analysis.Summary.Interval: Student-t below analysis.SmallN seeds,
// percentile bootstrap from there), from the seed counts of its
// configurations, for captions.
func (d *Data) ciNote(task string) string {
	lo, hi := -1, -1
	for _, c := range d.Cells(task) {
		n := len(c.Trials)
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	seeds := fmt.Sprintf("%d seeds", lo)
	if hi != lo {
		seeds = fmt.Sprintf("%d–%d seeds", lo, hi)
	}
	switch {
	case lo < 0:
		return "95% CIs over seeds"
	case hi < analysis.SmallN:
		return fmt.Sprintf("95%% CIs are Student-t intervals over %s (the bootstrap's are too narrow below %d)", seeds, analysis.SmallN)
	case lo >= analysis.SmallN:
		return fmt.Sprintf("95%% CIs are percentile-bootstrap intervals over %s", seeds)
	}
	return fmt.Sprintf("95%% CIs over %s are Student-t intervals for configurations with fewer than %d seeds, percentile-bootstrap otherwise", seeds, analysis.SmallN)
}

// ciTitle is a table cell's tooltip: the mean, the interval shown
// (lo, hi) and its method, flanked by the other interval where both exist.
func ciTitle(s analysis.Summary, lo, hi float64) string {
	t := fmt.Sprintf("mean %.4g, 95%% CI [%.4g, %.4g] (%s), %d seeds", s.Mean, lo, hi, analysis.IntervalMethod(s.N), s.N)
	if s.N >= 2 && s.N < analysis.SmallN {
		t += fmt.Sprintf("; percentile bootstrap [%.4g, %.4g]", s.CILo, s.CIHi)
	}
	return t
}
