package plots

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"peftbench/configs"
	"peftbench/results"
)

// baseOf maps a metric to where the base model's value of it is recorded
// (the builtin trainer evaluates the base model before fine-tuning, which
// is every trial's step 0): a trials.parquet column, an extra key, or zero
// by definition (forgetting measures the distance from the base).
var baseOf = map[string]func(t *results.TrialRow) float64{
	"target_metric":       extraOf("target_metric_before"),
	"target_loss":         extraOf("target_loss_before"),
	"retain_metric_after": func(t *results.TrialRow) float64 { return t.RetainMetricBefore },
	"retain_loss_after":   func(t *results.TrialRow) float64 { return t.RetainLossBefore },
	"refusal_retention":   extraOf("refusal_base"),
	"forgetting":          func(*results.TrialRow) float64 { return 0 },
	"forgetting_ce":       func(*results.TrialRow) float64 { return 0 },
}

func extraOf(key string) func(t *results.TrialRow) float64 {
	return func(t *results.TrialRow) float64 {
		if v, ok := t.Extra[key]; ok {
			return v
		}
		return math.NaN()
	}
}

// baseValue is the base model's value of m on task: the value its ok
// trials record for the model before fine-tuning. It is known only when
// every trial records it and all agree (trials with different task
// options start from different base models, and then no one line is the
// reference).
func (d *Data) baseValue(task string, m Metric) (float64, bool) {
	get, ok := baseOf[m.Name]
	if !ok {
		return 0, false
	}
	v, seen := math.NaN(), false
	for i := range d.Trials {
		t := &d.Trials[i]
		if t.Task != task || t.Status != results.StatusOK {
			continue
		}
		x := get(t)
		if math.IsNaN(x) || math.IsInf(x, 0) || seen && math.Abs(x-v) > 1e-9*max(1, math.Abs(v)) {
			return 0, false
		}
		v, seen = x, true
	}
	return v, seen
}

// curveBase maps a learning-curve panel to the metric whose base value is
// its step-0 value: the target split's loss and accuracy, the retain
// split's, and forgetting.
func curveBase(k curveKey) (Metric, bool) {
	target := k.split == "target" || k.split == "eval"
	switch {
	case k.metric == "forgetting":
		return Forgetting, true
	case target && k.metric == "accuracy":
		return TargetMetric, true
	case target && k.metric == "loss":
		return TargetLoss, true
	case k.split == "retain" && k.metric == "accuracy":
		return RetainMetric, true
	case k.split == "retain" && k.metric == "loss":
		return configs.RetainLossAfter, true
	}
	return Metric{}, false
}

var (
	baseColor = color.Gray{0x33}
	baseLine  = draw.LineStyle{Color: baseColor, Width: vg.Points(0.8), Dashes: []vg.Length{vg.Points(0.8), vg.Points(1.6)}}
	baseGlyph = draw.GlyphStyle{Color: baseColor, Radius: vg.Points(3), Shape: draw.CrossGlyph{}}
	// baseEntry is the legend entry of the base model's reference.
	baseEntry = legendEntry{name: "base model (step 0)", line: &baseLine, glyph: &baseGlyph}
)

// addBaseY draws the base model's value y as a dotted horizontal line
// across the panel's data, after everything else was added (gonum sets
// the axis range as data is added).
func addBaseY(p *plot.Plot, y float64) {
	x0, x1 := p.X.Min, p.X.Max
	if x0 == x1 || math.IsInf(x0, 0) || math.IsInf(x1, 0) {
		return
	}
	l, _ := plotter.NewLine(plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}})
	l.LineStyle = baseLine
	p.Add(l)
}

// addBasePoint marks the base model at (x, y).
func addBasePoint(p *plot.Plot, x, y float64) {
	sc, _ := plotter.NewScatter(plotter.XYs{{X: x, Y: y}})
	sc.GlyphStyle = baseGlyph
	p.Add(sc)
}
