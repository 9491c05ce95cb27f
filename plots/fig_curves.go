package plots

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"

	"peftbench/analysis"
	"peftbench/results"
)

func init() {
	register(kind{order: 30, name: "curves", summary: "learning curves: train and eval metrics over steps, per method", build: curves})
}

// curveKey is one panel of the learning curves: a (split, metric) series
// of steps.parquet.
type curveKey struct{ split, metric string }

// curveSeries is one method's values of a panel, by step, over its seeds.
type curveSeries struct {
	method string
	rank   int64
	bystep map[int64][]float64
}

// curves draws the learning curves of a task: one panel per (split,
// metric) logged in steps.parquet, one line per method (its highest rank),
// mean over seeds with a 95% CI band.
func curves(d *Data, task string) ([]*Figure, string) {
	ok := map[string]*results.TrialRow{}
	for i := range d.Trials {
		t := &d.Trials[i]
		if t.Task == task && t.Status == results.StatusOK {
			ok[t.TrialID] = t
		}
	}
	keys, bestRank := curveKeys(d.Steps, ok)
	if len(keys) == 0 {
		return nil, "no step metrics logged"
	}
	data := curveData(d.Steps, ok, keys, bestRank)
	var panels []*plot.Plot
	var legend []legendEntry
	based := false
	for _, k := range keys {
		p := curvePanel(k, data[k], &legend)
		if m, ok := curveBase(k); ok {
			if v, ok := d.baseValue(task, m); ok {
				addBasePoint(p, 0, v) // first: it widens the x range the line spans
				addBaseY(p, v)
				based = true
			}
		}
		panels = append(panels, p)
	}
	base := ""
	if based {
		legend = append(legend, baseEntry)
		base = "; the cross at step 0 and the dotted line are the base model before fine-tuning"
	}
	return []*Figure{newFigure("curves", task,
		fmt.Sprintf("%s: learning curves per method at its highest rank; mean over seeds with CI bands; %s%s.", task, d.ciNote(task), base),
		panels, legend)}, ""
}

// finiteStep returns the ok trial of s when its value is finite, else nil.
func finiteStep(s results.StepRow, ok map[string]*results.TrialRow) *results.TrialRow {
	t := ok[s.TrialID]
	if t == nil || math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		return nil
	}
	return t
}

// curveKeys returns the panels of the learning curves (at most six:
// train, then eval, then retain splits; losses, then other metrics, then
// gradient norms) and the highest rank of each method with steps logged.
func curveKeys(steps []results.StepRow, ok map[string]*results.TrialRow) ([]curveKey, map[string]int64) {
	bestRank := map[string]int64{}
	var keys []curveKey
	for _, s := range steps {
		t := finiteStep(s, ok)
		if t == nil {
			continue
		}
		if r, seen := bestRank[t.Method]; !seen || t.Rank > r {
			bestRank[t.Method] = t.Rank
		}
		if k := (curveKey{s.Split, s.Metric}); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	// Optimiser bookkeeping is not a learning curve.
	keys = slices.DeleteFunc(keys, func(k curveKey) bool { return metricOrder(k.metric) > 2 })
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if oa, ob := splitOrder(a.split), splitOrder(b.split); oa != ob {
			return oa < ob
		}
		if a.split != b.split {
			return a.split < b.split
		}
		if ra, rb := metricOrder(a.metric), metricOrder(b.metric); ra != rb {
			return ra < rb
		}
		return a.metric < b.metric
	})
	if len(keys) > 6 {
		keys = keys[:6]
	}
	return keys, bestRank
}

// splitOrder ranks the splits of the learning-curve panels.
func splitOrder(s string) int {
	switch s {
	case "train":
		return 0
	case "eval", "target", "val", "valid":
		return 1
	case "retain":
		return 2
	}
	return 3
}

// curveData collects, per panel and method, the values of the method's
// highest rank by step.
func curveData(steps []results.StepRow, ok map[string]*results.TrialRow, keys []curveKey, bestRank map[string]int64) map[curveKey]map[string]*curveSeries {
	data := map[curveKey]map[string]*curveSeries{}
	for _, s := range steps {
		t := finiteStep(s, ok)
		if t == nil || t.Rank != bestRank[t.Method] {
			continue
		}
		k := curveKey{s.Split, s.Metric}
		if !slices.Contains(keys, k) {
			continue
		}
		if data[k] == nil {
			data[k] = map[string]*curveSeries{}
		}
		sr := data[k][t.Method]
		if sr == nil {
			sr = &curveSeries{method: t.Method, rank: t.Rank, bystep: map[int64][]float64{}}
			data[k][t.Method] = sr
		}
		sr.bystep[s.Step] = append(sr.bystep[s.Step], s.Value)
	}
	return data
}

// curvePanel draws one panel of the learning curves, a line per method,
// adding the methods not yet in legend to it.
func curvePanel(k curveKey, data map[string]*curveSeries, legend *[]legendEntry) *plot.Plot {
	ylabel := k.metric
	if strings.Contains(k.metric, "loss") {
		ylabel += " (nats)"
	}
	p := newPanel(k.split+" "+k.metric, "optimizer step", ylabel)
	methods := make([]string, 0, len(data))
	for m := range data {
		methods = append(methods, m)
	}
	sortMethods(methods)
	for _, m := range methods {
		sr := data[m]
		steps := make([]int64, 0, len(sr.bystep))
		for st := range sr.bystep {
			steps = append(steps, st)
		}
		slices.Sort(steps)
		steps = thin(steps, 100)
		pts := make(points, 0, len(steps))
		for _, st := range steps {
			s := analysis.Summarize(sr.bystep[st])
			lo, hi := ci(s)
			pts = append(pts, point{float64(st), s.Mean, float64(st), float64(st), lo, hi})
		}
		addCurve(p, pts, MethodStyle(m))
		name := m
		if sr.rank > 0 {
			name = fmt.Sprintf("%s r=%d", m, sr.rank)
		}
		if !slices.ContainsFunc(*legend, func(e legendEntry) bool { return e.name == name }) {
			e := methodEntry(m, true)
			e.name = name
			e.glyph = nil
			*legend = append(*legend, e)
		}
	}
	return p
}

// thin keeps at most n of xs, evenly spaced, always the last.
func thin(xs []int64, n int) []int64 {
	if len(xs) <= n {
		return xs
	}
	out := make([]int64, 0, n)
	for i := range n {
		out = append(out, xs[i*(len(xs)-1)/(n-1)])
	}
	return out
}

// addCurve draws a learning curve: line and CI band, no markers.
func addCurve(p *plot.Plot, pts points, s Style) {
	if len(pts) == 1 {
		addSeries(p, pts, s)
		return
	}
	addBandLine(p, pts, s)
}

// metricOrder ranks step metrics for the learning-curve panels: losses,
// then accuracies and other task metrics, then gradient norms; learning
// rates and other schedule values (3) are not drawn.
func metricOrder(m string) int {
	switch {
	case strings.Contains(m, "loss"):
		return 0
	case m == "lr" || m == "learning_rate" || strings.HasPrefix(m, "lr_") || m == "rank_budget":
		return 3
	case strings.Contains(m, "grad"):
		return 2
	}
	return 1
}
