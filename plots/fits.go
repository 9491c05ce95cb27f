package plots

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"sync"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"peftbench/analysis"
	"peftbench/results"
)

func init() {
	register(kind{order: 80, name: "forgetting-law", summary: "forgetting vs trainable parameters, steps, both jointly and fine-tuning loss, fitted laws drawn", build: forgettingLaw})
}

// LawFit is one forgetting law fitted to a task's trials (Kalajdzievski
// 2024): forgetting against trainable parameters P, against steps N,
// jointly, or against the fine-tuning loss.
type LawFit struct {
	Task   string
	Name   string // what is fitted against: "P", "N", "P,N" or "L_ft"
	Form   string // the analysis form: power-P, power-N, power, linear
	Source string // where the observations come from: trials.parquet or steps.parquet
	Fit    *analysis.Fit
	Err    error // why there is no fit (too few points, no convergence)
	// Degenerate, when set, is why Fit is no law by the rule `bench fit`
	// applies (analysis.Fit.Accept: low R², zero-width intervals): the
	// report warns and the figure draws the points without the curve.
	Degenerate error

	x       [][]float64 // predictors per observation
	y       []float64
	methods []string                // method of each observation
	predict func(x float64) float64 // the drawn curve, when not Fit.Predict of x
	logY    bool                    // forgetting on a log scale (positive points only)
}

// fitResamples bounds the bootstrap of the nonlinear fits: 200 resamples
// give percentile intervals good to about a unit in the second digit and
// keep `bench plot` fast.
const fitResamples = 200

const maxStepPoints = 100

// Fits returns the forgetting laws the task's data supports, fitted once
// per Data. A law whose predictor takes fewer than three distinct values
// is left out; a fit that fails is returned with its error.
func (d *Data) Fits(task string) []*LawFit {
	if f, ok := d.fits[task]; ok {
		return f
	}
	var trials []*results.TrialRow
	for i := range d.Trials {
		t := &d.Trials[i]
		if t.Task == task && t.Status == results.StatusOK && !math.IsNaN(t.Forgetting) && !math.IsInf(t.Forgetting, 0) {
			trials = append(trials, t)
		}
	}
	var out []*LawFit
	collect := func(name, form string, pred func(*results.TrialRow) []float64) *LawFit {
		lf := &LawFit{Task: task, Name: name, Form: form, Source: results.TrialsFile}
		for _, t := range trials {
			x := pred(t)
			if slices.ContainsFunc(x, func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) || (form != "linear" && v <= 0) }) {
				continue
			}
			lf.x = append(lf.x, x)
			lf.y = append(lf.y, t.Forgetting)
			lf.methods = append(lf.methods, t.Method)
		}
		return lf
	}
	P := func(t *results.TrialRow) []float64 { return []float64{float64(t.TrainableParams)} }
	N := func(t *results.TrialRow) []float64 { return []float64{float64(t.Steps)} }
	cands := []*LawFit{
		collect("P", "power-P", P),
		collect("N", "power-N", N),
		collect("P,N", "power", func(t *results.TrialRow) []float64 { return []float64{float64(t.TrainableParams), float64(t.Steps)} }),
		collect("L_ft", "linear", func(t *results.TrialRow) []float64 { return []float64{t.TargetLoss} }),
	}
	if distinct(cands[1].x, 0) < 3 {
		// Steps do not vary across trials: use forgetting logged during
		// training, if any, as the N series.
		cands[1] = d.stepForgetting(task)
	}
	for _, lf := range cands {
		if distinct(lf.x, 0) < 3 || (lf.Form == "power" && distinct(lf.x, 1) < 3) {
			continue
		}
		out = append(out, lf)
	}
	// The nonlinear fits dominate `bench plot`: run them side by side.
	var wg sync.WaitGroup
	for _, lf := range out {
		wg.Go(func() {
			opt := analysis.FitOptions{}
			if lf.Form != "linear" {
				opt.Resamples = fitResamples
			}
			if lf.Err = analysis.CheckData(lf.Form, lf.x, nil); lf.Err != nil {
				return
			}
			lf.Fit, lf.Err = analysis.FitForm(lf.Form, lf.x, lf.y, opt)
			if lf.Fit != nil {
				lf.Degenerate = lf.Fit.Accept()
			}
		})
	}
	wg.Wait()
	if d.fits == nil {
		d.fits = map[string][]*LawFit{}
	}
	d.fits[task] = out
	return out
}

// stepForgetting collects forgetting logged per step (metric "forgetting"
// in steps.parquet) for the task's successful trials, at most maxStepPoints points
// evenly spread (the bootstrap refits them a few hundred times).
func (d *Data) stepForgetting(task string) *LawFit {
	lf := &LawFit{Task: task, Name: "N", Form: "power-N", Source: results.StepsFile}
	for _, s := range d.Steps {
		if s.Metric != "forgetting" || s.Step <= 0 || math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		t := d.Trial(s.TrialID)
		if t == nil || t.Task != task || t.Status != results.StatusOK {
			continue
		}
		lf.x = append(lf.x, []float64{float64(s.Step)})
		lf.y = append(lf.y, s.Value)
		lf.methods = append(lf.methods, t.Method)
	}
	if n := len(lf.y); n > maxStepPoints {
		var x [][]float64
		var y []float64
		var m []string
		for i := range maxStepPoints {
			k := i * (n - 1) / (maxStepPoints - 1)
			x, y, m = append(x, lf.x[k]), append(y, lf.y[k]), append(m, lf.methods[k])
		}
		lf.x, lf.y, lf.methods = x, y, m
	}
	return lf
}

func distinct(x [][]float64, j int) int {
	var seen []float64
	for _, row := range x {
		if j < len(row) && !slices.Contains(seen, row[j]) {
			seen = append(seen, row[j])
		}
	}
	return len(seen)
}

// Summary is the fit in one line: the formula, each parameter with its CI,
// and R².
func (lf *LawFit) Summary() string {
	if lf.Fit == nil {
		return fmt.Sprintf("%s: no fit: %v", lf.Name, lf.Err)
	}
	s := lf.Fit.Formula + ":"
	for i, name := range lf.Fit.Params {
		s += fmt.Sprintf(" %s = %s;", name, fmtCI(lf.Fit.Values[i], lf.Fit.CILo[i], lf.Fit.CIHi[i]))
	}
	s += fmt.Sprintf(" R² = %.3f (n = %d)", lf.Fit.R2, lf.Fit.N)
	if lf.Degenerate != nil {
		s += fmt.Sprintf(" — %v: not a law", lf.Degenerate)
	}
	return s
}

// collapsed is the joint fit L_f = c + A·P^α·N^β as a law in one
// predictor, x = A·P^α·N^β at the fitted A, α and β: when the law holds
// the points lie on the curve c + x, over every P and N at once. It is
// drawn on log–log axes, where a power law is straight.
func (lf *LawFit) collapsed() *LawFit {
	c, _, _, _ := lf.Fit.Param("c")
	out := *lf
	out.Name = "A·P^α·N^β"
	out.logY = true
	out.x = make([][]float64, len(lf.x))
	for i, x := range lf.x {
		// Predict less c is A·P^α·N^β whatever the form's internal scaling.
		out.x[i] = []float64{lf.Fit.Predict(x) - c}
	}
	out.predict = func(x float64) float64 { return c + x }
	return &out
}

var lawLabels = map[string]string{
	"A·P^α·N^β": "joint fit's A·P^α·N^β (nats, log scale)",
	"P":         "trainable parameters P (log scale)",
	"N":         "optimizer steps N (log scale)",
	"L_ft":      "fine-tuning loss L_ft (nats)",
}

var greek = map[string]string{"alpha": "α", "beta": "β"}

// forgettingLaw draws forgetting against P, N and the fine-tuning loss,
// one panel each, with the fitted law over the points.
func forgettingLaw(d *Data, task string) ([]*Figure, string) {
	var panels []*plot.Plot
	var legend []legendEntry
	for _, lf := range d.Fits(task) {
		if lf.Form == "power" {
			if lf.Fit == nil || lf.Degenerate != nil {
				continue // two predictors and no (accepted) fit: nothing to collapse onto
			}
			lf = lf.collapsed()
		}
		title := "no fit"
		if lf.Fit != nil {
			title = ""
			for i, name := range lf.Fit.Params {
				if g, ok := greek[name]; ok || lf.Form == "linear" && name == "b" {
					if ok {
						name = g
					}
					title += fmt.Sprintf("%s = %.2g [%.2g, %.2g], ", name, lf.Fit.Values[i], lf.Fit.CILo[i], lf.Fit.CIHi[i])
				}
			}
			title += fmt.Sprintf("R² = %.2f", lf.Fit.R2)
			if lf.Degenerate != nil {
				title = fmt.Sprintf("degenerate fit (R² = %.2f): not drawn", lf.Fit.R2)
			}
		}
		// The full forgetting label is taller than a panel of the 2×2 grid.
		p := newPanel(title, lawLabels[lf.Name], "forgetting L_f (nats)")
		p.Title.TextStyle.Font.Size = labelSize
		logX := lf.Form != "linear"
		if logX {
			logAxis(&p.X)
		}
		if lf.logY {
			logAxis(&p.Y)
			p.Y.Label.Text = "forgetting L_f (nats, log scale)"
		}
		byM := map[string]plotter.XYs{}
		var methods []string
		lo, hi := math.Inf(1), math.Inf(-1)
		for i, x := range lf.x {
			m := lf.methods[i]
			if (logX && x[0] <= 0) || (lf.logY && lf.y[i] <= 0) {
				continue
			}
			if _, ok := byM[m]; !ok {
				methods = append(methods, m)
			}
			byM[m] = append(byM[m], plotter.XY{X: x[0], Y: lf.y[i]})
			lo, hi = math.Min(lo, x[0]), math.Max(hi, x[0])
		}
		sortMethods(methods)
		for _, m := range methods {
			sc, _ := plotter.NewScatter(byM[m])
			g := glyphStyle(MethodStyle(m))
			g.Radius = vg.Points(1.8)
			sc.GlyphStyle = g
			p.Add(sc)
			if !slices.ContainsFunc(legend, func(e legendEntry) bool { return e.name == m }) {
				legend = append(legend, methodEntry(m, false))
			}
		}
		if lf.Fit != nil && lf.Degenerate == nil {
			var xs []float64
			if logX {
				xs = logSpace(lo, hi, 60)
			} else {
				xs = []float64{lo, hi}
			}
			var curve plotter.XYs
			for _, x := range xs {
				var y float64
				if lf.predict != nil {
					y = lf.predict(x)
				} else {
					y = lf.Fit.Predict([]float64{x})
				}
				if !lf.logY || y > 0 {
					curve = append(curve, plotter.XY{X: x, Y: y})
				}
			}
			if l, err := plotter.NewLine(curve); err == nil && len(curve) > 1 {
				l.LineStyle = fitLine
				p.Add(l)
			}
		}
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil, "forgetting does not vary with P, N or the fine-tuning loss over ≥ 3 values"
	}
	legend = append(legend, legendEntry{name: "fitted law", line: &fitLine})
	return []*Figure{newFigure("forgetting-law", task,
		fmt.Sprintf("%s: forgetting against trainable parameters P (L_f = c + A·P^α), steps N (L_f = c + A·N^β), both jointly (L_f = c + A·P^α·N^β, on log–log axes against A·P^α·N^β at the fitted A, α and β, where the points fall on c + x if the law holds) and fine-tuning loss (L_f = a − b·L_ft), one point per trial; forgetting is KL(base ‖ tuned) on retain data; titles give the exponents and slope with 95%% bootstrap CIs and R²; a fit that bench fit would refuse (R² below %.1f or an interval of zero width) is marked degenerate and its curve not drawn.", task, analysis.MinR2),
		panels, legend)}, ""
}

var fitLine = draw.LineStyle{Color: color.Gray{0x22}, Width: vg.Points(1.1)}
