package analysis

import (
	"fmt"
	"math"
	"strings"
)

// MinR2 is the least R² of an accepted fit: a law that explains less than
// half the variance of its data does not describe it, whatever its
// parameters' intervals say.
const MinR2 = 0.5

// CheckData says whether observations x (rows of predictors in FormVars
// order) can support the named form: more observations than the form has
// parameters, and every predictor taking at least two values. cols names
// the predictors in messages (the form's own names when nil). It is the
// rule `bench fit` and the report's forgetting laws share, before fitting;
// Accept is the rule after.
func CheckData(name string, x [][]float64, cols []string) error {
	f, ok := forms[name]
	if !ok {
		return fmt.Errorf("analysis: fit: unknown form %q (known: %v)", name, FormNames())
	}
	if cols == nil {
		cols = f.vars
	}
	if len(x) <= f.nparam {
		return fmt.Errorf("%d usable observations (finite %s): want more than %d for %d parameters", len(x), strings.Join(cols, ", "), f.nparam, f.nparam)
	}
	for j, c := range cols {
		seen := map[float64]bool{}
		for _, row := range x {
			seen[row[j]] = true
		}
		if len(seen) < 2 {
			return fmt.Errorf("%s takes one value (%g) over the %d observations: vary it to fit a law in it", c, x[0][j], len(x))
		}
	}
	return nil
}

// Accept says whether a fit describes its data well enough to be reported
// as a law: R² is defined and at least MinR2, and every parameter's
// bootstrap interval has positive width unless the law fits exactly (an
// interval of zero width over data the law leaves residuals on means every
// resample refitted to the same point, a stalled optimiser or a degenerate
// design, not certainty). The error lists every reason.
func (f *Fit) Accept() error {
	var why []string
	switch {
	case math.IsNaN(f.R2):
		why = append(why, "R² undefined (constant responses)")
	case f.R2 < MinR2:
		why = append(why, fmt.Sprintf("R² = %.2f below %.1f", f.R2, MinR2))
	}
	var zero []string
	exact := f.R2 > 1-1e-6
	for i, p := range f.Params {
		if exact {
			break
		}
		lo, hi := f.CILo[i], f.CIHi[i]
		if math.IsNaN(lo) || math.IsNaN(hi) || !(hi-lo > 1e-12*max(1, math.Abs(f.Values[i]))) {
			zero = append(zero, p)
		}
	}
	if len(zero) > 0 {
		why = append(why, "zero-width 95% CI of "+strings.Join(zero, ", "))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("degenerate fit: %s", strings.Join(why, "; "))
}
