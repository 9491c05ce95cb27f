package analysis

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"gonum.org/v1/gonum/optimize"
	"gonum.org/v1/gonum/stat"
)

// Fit is a fitted model with percentile-bootstrap confidence intervals.
type Fit struct {
	Form     string    `json:"form"`
	Formula  string    `json:"formula"`
	Vars     []string  `json:"vars"`   // the predictors, in the order of each x row
	Params   []string  `json:"params"` // reported parameters
	Values   []float64 `json:"values"`
	CILo     []float64 `json:"ci_lo"`
	CIHi     []float64 `json:"ci_hi"`
	Level    float64   `json:"level"`
	R2       float64   `json:"r2"`
	N        int       `json:"n"`
	Warnings []string  `json:"warnings,omitempty"`

	form  *form
	theta []float64
}

// Param returns a parameter's estimate and interval by name.
func (f *Fit) Param(name string) (v, lo, hi float64, ok bool) {
	i := slices.Index(f.Params, name)
	if i < 0 {
		return 0, 0, 0, false
	}
	return f.Values[i], f.CILo[i], f.CIHi[i], true
}

// Predict evaluates the fitted model at x (one value per Vars entry).
func (f *Fit) Predict(x []float64) float64 { return f.form.eval(f.theta, f.form.transform(x), nil) }

// FitOptions configures the fits.
type FitOptions struct {
	Resamples int     // bootstrap resamples; default 1000 (linear) or 300 (nonlinear)
	Level     float64 // confidence level; default 0.95
}

// form is a named model y = f(θ; x). Internally positive scale factors are
// fitted as logarithms and predictors of power laws as their logarithms.
type form struct {
	name, formula string
	vars, params  []string
	nparam        int
	transform     func(x []float64) []float64 // raw predictors → model inputs
	eval          func(theta, z, grad []float64) float64
	report        func(theta []float64) []float64 // internal → reported values
	starts        func(z [][]float64, y []float64) [][]float64
	positive      bool // the predictors must be > 0
}

func logs(x []float64) []float64 {
	z := make([]float64, len(x))
	for i, v := range x {
		z[i] = math.Log(v)
	}
	return z
}

// powerForm builds c + A·Πxᵢ^eᵢ (shifted) or A·Πxᵢ^eᵢ over the named
// predictors; θ = (c?, log A, e…).
func powerForm(name, formula string, vars, exps []string, shifted bool) *form {
	off := 0
	params := []string{"A"}
	if shifted {
		off = 1
		params = []string{"c", "A"}
	}
	params = append(params, exps...)
	nv := len(vars)
	return &form{
		name: name, formula: formula, vars: vars, params: params, nparam: off + 1 + nv,
		positive:  true,
		transform: logs,
		eval: func(th, z, g []float64) float64 {
			s := th[off]
			for i := range nv {
				s += th[off+1+i] * z[i]
			}
			e := math.Exp(s)
			if g != nil {
				if shifted {
					g[0] = 1
				}
				g[off] = e
				for i := range nv {
					g[off+1+i] = e * z[i]
				}
			}
			if shifted {
				return th[0] + e
			}
			return e
		},
		report: func(th []float64) []float64 {
			r := slices.Clone(th)
			r[off] = math.Exp(th[off])
			return r
		},
		starts: func(z [][]float64, y []float64) [][]float64 {
			lo, hi := slices.Min(y), slices.Max(y)
			span := hi - lo
			if span == 0 {
				span = math.Max(math.Abs(hi), 1)
			}
			shifts := []float64{0}
			if shifted {
				shifts = []float64{1e-3, 1e-2, 0.1, 0.3, 1, 3, 10}
			}
			var out [][]float64
			for _, d := range shifts {
				c := 0.0
				if shifted {
					c = lo - d*span
				}
				// log(y − c) = log A + Σ eᵢ·zᵢ by least squares.
				ly := make([]float64, len(y))
				ok := true
				for i, v := range y {
					if v-c <= 0 {
						ok = false
						break
					}
					ly[i] = math.Log(v - c)
				}
				if !ok {
					continue
				}
				coef, err := ols(z, ly)
				if err != nil {
					continue
				}
				th := make([]float64, 0, off+1+nv)
				if shifted {
					th = append(th, c)
				}
				out = append(out, append(th, coef...))
			}
			return out
		},
	}
}

var forms = map[string]*form{
	"linear": {
		name: "linear", formula: "L_f = a − b·L_ft", vars: []string{"L_ft"}, params: []string{"a", "b"}, nparam: 2,
		transform: slices.Clone[[]float64],
		eval: func(th, z, g []float64) float64 {
			if g != nil {
				g[0], g[1] = 1, -z[0]
			}
			return th[0] - th[1]*z[0]
		},
		report: slices.Clone[[]float64],
	},
	"power":          powerForm("power", "L_f = c + A·P^α·N^β", []string{"P", "N"}, []string{"alpha", "beta"}, true),
	"power-P":        powerForm("power-P", "L_f = c + A·P^α", []string{"P"}, []string{"alpha"}, true),
	"power-N":        powerForm("power-N", "L_f = c + A·N^β", []string{"N"}, []string{"beta"}, true),
	"multiplicative": powerForm("multiplicative", "L_f = A·P^α·N^β", []string{"P", "N"}, []string{"alpha", "beta"}, false),
}

// FormNames lists the model forms FitForm accepts.
func FormNames() []string {
	names := make([]string, 0, len(forms))
	for n := range forms {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FormVars returns the predictors a form takes, in order.
func FormVars(name string) ([]string, bool) {
	f, ok := forms[name]
	if !ok {
		return nil, false
	}
	return slices.Clone(f.vars), true
}

// FitLinear fits forgetting against fine-tuning loss, L_f = a − b·L_ft
// (Kalajdzievski 2024, arXiv 2401.05605: forgetting rises linearly as the
// fine-tuning loss falls), by ordinary least squares.
func FitLinear(lft, lf []float64, opt FitOptions) (*Fit, error) {
	x := make([][]float64, len(lft))
	for i, v := range lft {
		x[i] = []float64{v}
	}
	return FitForm("linear", x, lf, opt)
}

// FitForm fits the named form to rows x (one slice of predictors per
// observation, in FormVars order) and responses y: closed-form least squares
// for "linear", nonlinear least squares (gonum/optimize BFGS from several
// log-linear starting points) otherwise. Confidence intervals come from a
// fixed-seed bootstrap over observations, so the result is deterministic.
// The forms: "power" L_f = c + A·P^α·N^β (the shifted power law of
// Kalajdzievski 2024), "power-P", "power-N", "multiplicative" A·P^α·N^β.
func FitForm(name string, x [][]float64, y []float64, opt FitOptions) (*Fit, error) {
	f, ok := forms[name]
	if !ok {
		return nil, fmt.Errorf("analysis: fit: unknown form %q (known: %v)", name, FormNames())
	}
	if len(x) != len(y) {
		return nil, fmt.Errorf("analysis: fit %s: %d predictor rows, %d responses", name, len(x), len(y))
	}
	z := make([][]float64, len(x))
	for i, row := range x {
		if len(row) != len(f.vars) {
			return nil, fmt.Errorf("analysis: fit %s: row %d has %d predictors, want %d %v", name, i, len(row), len(f.vars), f.vars)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) || (f.positive && v <= 0) {
				return nil, fmt.Errorf("analysis: fit %s: row %d: %s = %v is not usable", name, i, f.vars[j], v)
			}
		}
		if math.IsNaN(y[i]) || math.IsInf(y[i], 0) {
			return nil, fmt.Errorf("analysis: fit %s: row %d: response %v", name, i, y[i])
		}
		z[i] = f.transform(row)
	}
	if len(y) <= f.nparam {
		return nil, fmt.Errorf("analysis: fit %s: %d observations for %d parameters", name, len(y), f.nparam)
	}
	level := opt.Level
	if level == 0 {
		level = 0.95
	}
	nboot := opt.Resamples
	if nboot == 0 {
		nboot = 300
		if name == "linear" {
			nboot = 1000
		}
	}
	theta, err := f.fit(z, y, nil)
	if err != nil {
		return nil, fmt.Errorf("analysis: fit %s: %w", name, err)
	}
	out := &Fit{Form: name, Formula: f.formula, Vars: slices.Clone(f.vars), Params: slices.Clone(f.params),
		Values: f.report(theta), Level: level, N: len(y), form: f, theta: theta}
	out.R2 = rSquared(f, theta, z, y)
	if len(y) < 3*f.nparam {
		out.Warnings = append(out.Warnings, fmt.Sprintf("only %d observations for %d parameters", len(y), f.nparam))
	}

	// Bootstrap over observations.
	rng := rand.New(rand.NewPCG(bootstrapSeed, uint64(len(y))))
	draws := make([][]float64, f.nparam)
	failed := 0
	bz, by := make([][]float64, len(y)), make([]float64, len(y))
	for range nboot {
		for i := range by {
			k := rng.IntN(len(y))
			bz[i], by[i] = z[k], y[k]
		}
		th, err := f.fit(bz, by, theta)
		if err != nil {
			failed++
			continue
		}
		for p, v := range f.report(th) {
			draws[p] = append(draws[p], v)
		}
	}
	if failed > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%d of %d bootstrap fits failed", failed, nboot))
	}
	if len(draws[0]) < 10 {
		return nil, fmt.Errorf("analysis: fit %s: bootstrap failed", name)
	}
	out.CILo, out.CIHi = make([]float64, f.nparam), make([]float64, f.nparam)
	for p := range draws {
		out.CILo[p], out.CIHi[p] = percentileInterval(draws[p], level)
	}
	return out, nil
}

// fit returns the least-squares θ: OLS for linear forms, otherwise BFGS on
// the sum of squares from warm (if given) or from every starting point.
func (f *form) fit(z [][]float64, y []float64, warm []float64) ([]float64, error) {
	if f.name == "linear" {
		coef, err := ols(z, y)
		if err != nil {
			return nil, err
		}
		return []float64{coef[0], -coef[1]}, nil
	}
	starts := [][]float64{warm}
	if warm == nil {
		starts = f.starts(z, y)
	}
	sse := func(th []float64) float64 {
		s := 0.0
		for i, zi := range z {
			r := f.eval(th, zi, nil) - y[i]
			s += r * r
		}
		return s
	}
	g := make([]float64, f.nparam)
	p := optimize.Problem{
		Func: sse,
		Grad: func(grad, th []float64) {
			clear(grad)
			for i, zi := range z {
				r := f.eval(th, zi, g) - y[i]
				for k := range grad {
					grad[k] += 2 * r * g[k]
				}
			}
		},
	}
	var best []float64
	bestF := math.Inf(1)
	for _, s := range starts {
		res, err := optimize.Minimize(p, s, &optimize.Settings{GradientThreshold: 1e-12, MajorIterations: 2000}, &optimize.BFGS{})
		if res == nil || math.IsNaN(res.F) {
			continue
		}
		_ = err // a line-search stall near the optimum still leaves a usable point
		if res.F < bestF {
			best, bestF = res.X, res.F
		}
	}
	if best == nil {
		return nil, errors.New("no starting point converged")
	}
	return best, nil
}

func rSquared(f *form, theta []float64, z [][]float64, y []float64) float64 {
	mean := stat.Mean(y, nil)
	var sse, sst float64
	for i, zi := range z {
		r := f.eval(theta, zi, nil) - y[i]
		sse += r * r
		sst += (y[i] - mean) * (y[i] - mean)
	}
	if sst == 0 {
		return math.NaN()
	}
	return 1 - sse/sst
}

// ols fits y = b0 + Σ bⱼ·zⱼ by least squares (normal equations solved by
// QR through gonum's mat would be overkill for ≤ 3 predictors).
func ols(z [][]float64, y []float64) ([]float64, error) {
	n := len(y)
	if n == 0 {
		return nil, errors.New("no observations")
	}
	p := len(z[0]) + 1
	// Centre for conditioning, then solve the p−1 normal equations.
	mz := make([]float64, p-1)
	my := stat.Mean(y, nil)
	for _, zi := range z {
		for j, v := range zi {
			mz[j] += v / float64(n)
		}
	}
	a := make([]float64, (p-1)*(p-1))
	b := make([]float64, p-1)
	for i, zi := range z {
		for j := range p - 1 {
			dj := zi[j] - mz[j]
			b[j] += dj * (y[i] - my)
			for k := range p - 1 {
				a[j*(p-1)+k] += dj * (zi[k] - mz[k])
			}
		}
	}
	coef, err := solveSmall(a, b, p-1)
	if err != nil {
		return nil, err
	}
	b0 := my
	for j, c := range coef {
		b0 -= c * mz[j]
	}
	return append([]float64{b0}, coef...), nil
}

// solveSmall solves the m×m system a·x = b by Gaussian elimination with
// partial pivoting; an error for a (numerically) singular matrix.
func solveSmall(a, b []float64, m int) ([]float64, error) {
	a, b = slices.Clone(a), slices.Clone(b)
	scale := 0.0
	for _, v := range a {
		scale = max(scale, math.Abs(v))
	}
	for col := range m {
		piv := col
		for r := col + 1; r < m; r++ {
			if math.Abs(a[r*m+col]) > math.Abs(a[piv*m+col]) {
				piv = r
			}
		}
		if math.Abs(a[piv*m+col]) <= 1e-12*scale {
			return nil, errors.New("predictors are collinear or constant")
		}
		if piv != col {
			for k := range m {
				a[col*m+k], a[piv*m+k] = a[piv*m+k], a[col*m+k]
			}
			b[col], b[piv] = b[piv], b[col]
		}
		for r := col + 1; r < m; r++ {
			f := a[r*m+col] / a[col*m+col]
			for k := col; k < m; k++ {
				a[r*m+k] -= f * a[col*m+k]
			}
			b[r] -= f * b[col]
		}
	}
	x := make([]float64, m)
	for r := m - 1; r >= 0; r-- {
		s := b[r]
		for k := r + 1; k < m; k++ {
			s -= a[r*m+k] * x[k]
		}
		x[r] = s / a[r*m+r]
	}
	return x, nil
}
