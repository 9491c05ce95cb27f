package plots

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"peftbench/analysis"
	"peftbench/configs"
	"peftbench/results"
)

// Skip says why a figure was not drawn: there was no data for it. A figure
// without data is skipped, never drawn empty.
type Skip struct {
	Kind, Task, Reason string
}

func (s Skip) String() string {
	if s.Task == "" {
		return s.Kind + ": " + s.Reason
	}
	return s.Kind + " (" + s.Task + "): " + s.Reason
}

// kind is one figure type. build makes the figure for one task, or returns
// why it cannot.
type kind struct {
	name, summary string
	build         func(d *Data, task string) ([]*Figure, string)
}

// kinds are the figure types, in the order the report shows them.
var kinds = []kind{
	{"metric-vs-rank", "target metric vs rank, one line per method, α rule and swept setting", metricVsRank},
	{"learn-forget", "learning vs forgetting: target metric against forgetting per configuration", learnForget},
	{"curves", "learning curves: train and eval metrics over steps, per method", curves},
	{"spectrum", "singular values of one layer, base vs tuned, intruders marked", spectrum},
	{"maxcos", "heatmap of max |cos| between tuned and base singular vectors", maxCos},
	{"intruders", "intruder dimension count vs rank per method, α rule and swept setting, one panel per ε", intruders},
	{"intruders-matched", "intruder dimensions vs rank at matched target loss: learning-rate curves read at full fine-tuning's losses", intrudersMatched},
	{"forgetting-law", "forgetting vs trainable parameters, steps, both jointly and fine-tuning loss, fitted laws drawn", forgettingLaw},
	{"efficiency", "efficiency frontier: trainable parameters vs target metric", efficiency},
	{"safety", "safety retention vs target metric (safety-guard)", safety},
}

// Kinds lists the figure kinds, in report order, with a one-line summary.
func Kinds() [][2]string {
	out := make([][2]string, len(kinds))
	for i, k := range kinds {
		out[i] = [2]string{k.name, k.summary}
	}
	return out
}

// Figures builds every figure the data supports, per task, for the kinds
// named in only (all when empty). A kind or task without data gives a Skip.
func Figures(d *Data, only []string) ([]*Figure, []Skip, error) {
	for _, o := range only {
		if !slices.ContainsFunc(kinds, func(k kind) bool { return k.name == o }) {
			names := make([]string, len(kinds))
			for i, k := range kinds {
				names[i] = k.name
			}
			return nil, nil, fmt.Errorf("plots: unknown figure %q (known: %s)", o, strings.Join(names, ", "))
		}
	}
	tasks := d.Tasks()
	var figs []*Figure
	var skips []Skip
	if len(tasks) == 0 {
		return nil, []Skip{{Kind: "all", Reason: "no successful trials"}}, nil
	}
	for _, k := range kinds {
		if len(only) > 0 && !slices.Contains(only, k.name) {
			continue
		}
		if k.name == "safety" {
			// One task has this metric; don't report every other task.
			n := len(figs)
			for _, t := range tasks {
				fs, _ := k.build(d, t)
				figs = append(figs, fs...)
			}
			if len(figs) == n {
				skips = append(skips, Skip{Kind: k.name, Reason: "no trial reports refusal_retention (task safety-guard)"})
			}
			continue
		}
		for _, t := range tasks {
			fs, why := k.build(d, t)
			if len(fs) == 0 {
				skips = append(skips, Skip{Kind: k.name, Task: t, Reason: why})
			}
			figs = append(figs, fs...)
		}
	}
	return figs, skips, nil
}

// summaryPoint is the (x, y) point of a cell with both CIs.
func summaryPoint(c *Cell, xm, ym Metric) (point, bool) {
	xs, ys := c.Summary(xm), c.Summary(ym)
	if xs.N == 0 || ys.N == 0 {
		return point{}, false
	}
	xlo, xhi := ci(xs)
	ylo, yhi := ci(ys)
	return point{xs.Mean, ys.Mean, xlo, xhi, ylo, yhi}, true
}

// rankPoint is a ranked cell's (rank, metric) point.
func rankPoint(c *Cell, m Metric) (point, bool) {
	s := c.Summary(m)
	if s.N == 0 {
		return point{}, false
	}
	lo, hi := ci(s)
	r := float64(c.Rank)
	return point{r, s.Mean, r, r, lo, hi}, true
}

// vsRankPanel draws m against rank for every method of cells: lines for
// ranked methods, reference lines for rank-less ones. It returns the panel,
// the legend and whether anything was drawn.
func vsRankPanel(cells []*Cell, m Metric, title, ylabel string) (*plot.Plot, []legendEntry, bool) {
	var ranks []int64
	for _, c := range cells {
		if c.Ranked() && c.Has(m) && !slices.Contains(ranks, c.Rank) {
			ranks = append(ranks, c.Rank)
		}
	}
	if len(ranks) == 0 {
		return nil, nil, false
	}
	slices.Sort(ranks)
	p := newPanel(title, "rank r (log scale)", ylabel)
	rankAxis(p, ranks)
	var legend []legendEntry
	for _, ln := range lines(cells, true) {
		style, ok := drawRankLine(p, ln.cells, func(c *Cell) (point, bool) { return rankPoint(c, m) }, ln.style)
		if !ok {
			continue
		}
		legend = append(legend, styleEntry(ln.label, style, true))
	}
	return p, legend, true
}

// drawRankLine draws a line's cells at their points on a rank axis: the
// ranked ones as a series, the rank-less ones (full fine-tuning) as
// reference lines across the panel. It returns the style drawn and
// whether anything was.
func drawRankLine(p *plot.Plot, cells []*Cell, at func(*Cell) (point, bool), s Style) (Style, bool) {
	var pts points
	var refs []point
	for _, c := range cells {
		q, ok := at(c)
		if !ok {
			continue
		}
		if c.Ranked() {
			pts = append(pts, q)
		} else {
			refs = append(refs, q)
		}
	}
	switch {
	case len(pts) > 0:
		addSeries(p, pts, s)
	case len(refs) > 0:
		s = referenceStyle(s)
		for _, q := range refs {
			addReference(p, q, p.X.Min, p.X.Max, s)
		}
	default:
		return s, false
	}
	return s, true
}

func metricVsRank(d *Data, task string) ([]*Figure, string) {
	m := TargetMetric
	p, legend, ok := vsRankPanel(d.Cells(task), m, task, metricLabel(task))
	if !ok {
		return nil, "no ranked trial reports a target metric"
	}
	return []*Figure{newFigure("metric-vs-rank", task,
		fmt.Sprintf("%s: %s against adapter rank; mean over seeds with 95%% bootstrap CI bands; methods without a rank as dashed reference lines.", task, metricLabel(task)),
		[]*plot.Plot{p}, legend)}, ""
}

func learnForget(d *Data, task string) ([]*Figure, string) {
	return scatterByMethod(d, task, Forgetting, TargetMetric, "learn-forget", false, true,
		"no trial reports both forgetting and a target metric",
		fmt.Sprintf("%s: learning (%s) against forgetting per configuration (labels give r, or the settings of a method without a rank, whose points are joined as its curve); error bars are 95%% CIs over seeds; the dashed line is the Pareto front (less forgetting, more learning).", task, metricLabel(task)))
}

func efficiency(d *Data, task string) ([]*Figure, string) {
	return scatterByMethod(d, task, TrainableParams, TargetMetric, "efficiency", true, true,
		"no trial reports trainable parameters and a target metric",
		fmt.Sprintf("%s: %s against trainable parameters (log scale); error bars are 95%% CIs over seeds; the dashed line is the efficiency frontier.", task, metricLabel(task)))
}

func safety(d *Data, task string) ([]*Figure, string) {
	return scatterByMethod(d, task, TargetMetric, RefusalRetention, "safety", false, false,
		"no trial reports refusal_retention",
		fmt.Sprintf("%s: refusal retention (fraction of triggered inputs still refused) against %s, per method and rank; error bars are 95%% CIs over seeds.", task, metricLabel(task)))
}

// scatterByMethod draws one point per (method, rank) with CIs in both
// axes, each method's ranks joined in rank order and labelled, and,
// when front is set, the Pareto front (lower x, higher y).
func scatterByMethod(d *Data, task string, xm, ym Metric, name string, logX, front bool, why, caption string) ([]*Figure, string) {
	cells := d.Cells(task)
	xl, yl := xm.Label, ym.Label
	if xm.Name == TargetMetric.Name {
		xl = metricLabel(task)
	}
	if ym.Name == TargetMetric.Name {
		yl = metricLabel(task)
	}
	if logX {
		xl += " (log scale)"
	}
	p := newPanel(task, xl, yl)
	if logX {
		logAxis(&p.X)
	}
	var legend []legendEntry
	var all points
	lns := lines(cells, false)
	for _, ln := range lns {
		var pts points
		var labels []string
		for _, c := range ln.cells {
			q, ok := summaryPoint(c, xm, ym)
			if !ok || (logX && q.x <= 0) {
				continue
			}
			pts = append(pts, q)
			// A rank names a point of an adapter's line; the settings
			// (its learning rates) name the points of full fine-tuning's.
			var l []string
			if c.Ranked() {
				l = append(l, fmt.Sprintf("r%d", c.Rank))
			} else {
				for _, p := range c.Settings {
					l = append(l, configs.ShortPair(p))
				}
			}
			labels = append(labels, strings.Join(l, " "))
		}
		if len(pts) == 0 {
			continue
		}
		addMarkers(p, pts, ln.style, true)
		if len(ln.cells) > 1 {
			addLabels(p, pts, labels)
		}
		legend = append(legend, styleEntry(ln.label, ln.style, len(lns) > 1 && len(pts) > 1))
		all = append(all, pts...)
	}
	if len(all) == 0 {
		return nil, why
	}
	if front {
		f := paretoFront(all, true)
		if len(f) > 1 {
			addFront(p, f)
			legend = append(legend, frontEntry)
		}
	}
	return []*Figure{newFigure(name, task, caption, []*plot.Plot{p}, legend)}, ""
}

// curves draws the learning curves of a task: one panel per (split,
// metric) logged in steps.parquet, one line per method (its highest rank),
// mean over seeds with a 95% CI band.
func curves(d *Data, task string) ([]*Figure, string) {
	type key struct{ split, metric string }
	type series struct {
		method string
		rank   int64
		bystep map[int64][]float64
	}
	// The highest rank of each method with steps logged.
	ok := map[string]*results.TrialRow{}
	for i := range d.Trials {
		t := &d.Trials[i]
		if t.Task == task && t.Status == results.StatusOK {
			ok[t.TrialID] = t
		}
	}
	bestRank := map[string]int64{}
	var keys []key
	for _, s := range d.Steps {
		t := ok[s.TrialID]
		if t == nil || math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		if r, seen := bestRank[t.Method]; !seen || t.Rank > r {
			bestRank[t.Method] = t.Rank
		}
		if k := (key{s.Split, s.Metric}); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	// Optimiser bookkeeping is not a learning curve.
	keys = slices.DeleteFunc(keys, func(k key) bool { return metricOrder(k.metric) > 2 })
	if len(keys) == 0 {
		return nil, "no step metrics logged"
	}
	splitOrder := func(s string) int {
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
	data := map[key]map[string]*series{}
	for _, s := range d.Steps {
		t := ok[s.TrialID]
		if t == nil || t.Rank != bestRank[t.Method] || math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		k := key{s.Split, s.Metric}
		if !slices.Contains(keys, k) {
			continue
		}
		if data[k] == nil {
			data[k] = map[string]*series{}
		}
		sr := data[k][t.Method]
		if sr == nil {
			sr = &series{method: t.Method, rank: t.Rank, bystep: map[int64][]float64{}}
			data[k][t.Method] = sr
		}
		sr.bystep[s.Step] = append(sr.bystep[s.Step], s.Value)
	}
	var panels []*plot.Plot
	var legend []legendEntry
	for _, k := range keys {
		ylabel := k.metric
		if strings.Contains(k.metric, "loss") {
			ylabel += " (nats)"
		}
		p := newPanel(k.split+" "+k.metric, "optimizer step", ylabel)
		methods := make([]string, 0, len(data[k]))
		for m := range data[k] {
			methods = append(methods, m)
		}
		sortMethods(methods)
		for _, m := range methods {
			sr := data[k][m]
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
			if !slices.ContainsFunc(legend, func(e legendEntry) bool { return e.name == name }) {
				e := methodEntry(m, true)
				e.name = name
				e.glyph = nil
				legend = append(legend, e)
			}
		}
		panels = append(panels, p)
	}
	return []*Figure{newFigure("curves", task,
		fmt.Sprintf("%s: learning curves per method at its highest rank; mean over seeds with 95%% CI bands.", task),
		panels, legend)}, ""
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
	band := make(plotter.XYs, 0, 2*len(pts))
	for _, q := range pts {
		band = append(band, plotter.XY{X: q.x, Y: q.ylo})
	}
	for i := len(pts) - 1; i >= 0; i-- {
		band = append(band, plotter.XY{X: pts[i].x, Y: pts[i].yhi})
	}
	poly, _ := plotter.NewPolygon(band)
	poly.Color = translucent(s.Color, 0.18)
	poly.LineStyle.Width = 0
	p.Add(poly)
	l, _ := plotter.NewLine(pts)
	l.LineStyle = lineStyle(s)
	p.Add(l)
}

// spectrumRows groups a task's spectra rows by trial, keeping successful
// trials only.
func (d *Data) spectrumRows(task string) map[string][]results.SpectrumRow {
	out := map[string][]results.SpectrumRow{}
	for _, r := range d.Spectra {
		t := d.Trial(r.TrialID)
		if t == nil || t.Task != task || t.Status != results.StatusOK {
			continue
		}
		out[r.TrialID] = append(out[r.TrialID], r)
	}
	return out
}

// flagEpsilons returns the thresholds of a trial's intruder flags: the
// trial's own intruder counts carry them in the same order; otherwise the
// analysis defaults when the count matches.
func flagEpsilons(t *results.TrialRow, n int) []float64 {
	if len(t.Intruders) == n {
		es := make([]float64, n)
		for i, c := range t.Intruders {
			es[i] = c.Epsilon
		}
		return es
	}
	if len(analysis.DefaultEpsilons) == n {
		return analysis.DefaultEpsilons
	}
	if n == 1 {
		return []float64{0.5}
	}
	return nil
}

// nearest returns the index of the value in es closest to v.
func nearest(es []float64, v float64) int {
	best := 0
	for i, e := range es {
		if math.Abs(e-v) < math.Abs(es[best]-v) {
			best = i
		}
	}
	return best
}

// spectrum draws one layer's singular values, base against tuned, one panel
// per method (its lowest rank, first seed), intruders at ε ≈ 0.5 ringed.
// The layer is the one with the most intruders, so the figure shows the
// effect where it is.
func spectrum(d *Data, task string) ([]*Figure, string) {
	rows := d.spectrumRows(task)
	if len(rows) == 0 {
		return nil, "no spectra recorded"
	}
	// Count intruders per layer at ε ≈ 0.5.
	flagged := map[string]int{}
	var layers []string
	for id, rs := range rows {
		t := d.Trial(id)
		for _, r := range rs {
			if !slices.Contains(layers, r.Layer) {
				layers = append(layers, r.Layer)
			}
			if es := flagEpsilons(t, len(r.Intruder)); es != nil && r.Intruder[nearest(es, 0.5)] {
				flagged[r.Layer]++
			}
		}
	}
	sort.Strings(layers)
	layer := layers[0]
	for _, l := range layers {
		if flagged[l] > flagged[layer] {
			layer = l
		}
	}
	var panels []*plot.Plot
	legend := []legendEntry{{name: "base W₀", line: &draw.LineStyle{Color: grey, Width: lineWidth},
		glyph: &draw.GlyphStyle{Color: grey, Radius: glyphSize, Shape: draw.CircleGlyph{}}}}
	eps := math.NaN()
	methods, groups := byMethod(d.Cells(task))
	for _, m := range methods {
		// Lowest rank with spectra; rank-less cells have rank 0 and come first.
		var t *results.TrialRow
		var cell *Cell
		for _, c := range groups[m] {
			for _, tr := range c.Trials {
				if len(rows[tr.TrialID]) > 0 && (t == nil || tr.Seed < t.Seed) {
					t, cell = tr, c
				}
			}
			if t != nil {
				break
			}
		}
		if t == nil {
			continue
		}
		var rs []results.SpectrumRow
		for _, r := range rows[t.TrialID] {
			if r.Layer == layer {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		slices.SortFunc(rs, func(a, b results.SpectrumRow) int { return int(a.Index - b.Index) })
		s := MethodStyle(m)
		p := newPanel(fmt.Sprintf("%s (seed %d)", cell.Label(), t.Seed), "singular direction j", "singular value σⱼ")
		base := make(plotter.XYs, len(rs))
		tuned := make(plotter.XYs, len(rs))
		var intr plotter.XYs
		for i, r := range rs {
			x := float64(r.Index + 1)
			base[i] = plotter.XY{X: x, Y: r.SigmaBase}
			tuned[i] = plotter.XY{X: x, Y: r.SigmaTuned}
			if es := flagEpsilons(t, len(r.Intruder)); es != nil {
				k := nearest(es, 0.5)
				eps = es[k]
				if r.Intruder[k] {
					intr = append(intr, tuned[i])
				}
			}
		}
		bl, bs, _ := plotter.NewLinePoints(base)
		bl.LineStyle = draw.LineStyle{Color: grey, Width: lineWidth}
		bs.GlyphStyle = draw.GlyphStyle{Color: grey, Radius: glyphSize, Shape: draw.CircleGlyph{}}
		tl, ts, _ := plotter.NewLinePoints(tuned)
		tl.LineStyle = lineStyle(s)
		ts.GlyphStyle = glyphStyle(s)
		p.Add(bl, bs, tl, ts)
		if len(intr) > 0 {
			sc, _ := plotter.NewScatter(intr)
			sc.GlyphStyle = intruderGlyph
			p.Add(sc)
		}
		p.Y.Min = 0
		panels = append(panels, p)
		legend = append(legend, methodEntry(m, true))
	}
	if len(panels) == 0 {
		return nil, "no spectra for any method"
	}
	if !math.IsNaN(eps) {
		g := intruderGlyph
		legend = append(legend, legendEntry{name: fmt.Sprintf("intruder (ε = %g)", eps), glyph: &g})
	}
	return []*Figure{newFigure("spectrum", task,
		fmt.Sprintf("%s: top singular values of layer %s, base W₀ (grey) against the tuned W, one panel per method at its lowest rank; rings mark intruder dimensions (max |cos| to every base singular vector < ε).", task, layer),
		panels, legend)}, ""
}

var intruderGlyph = draw.GlyphStyle{Color: black, Radius: vg.Points(4.5), Shape: draw.RingGlyph{}}

// maxCos draws, per method and rank (rows) and tuned singular direction j
// (columns), max_i |cos(u_j, u⁰_i)| averaged over layers and seeds: the
// quantity intruder detection thresholds. spectra.parquet keeps only the
// maximum per tuned vector, not the full cosine matrix, so this is the
// heatmap the table supports.
func maxCos(d *Data, task string) ([]*Figure, string) {
	rows := d.spectrumRows(task)
	if len(rows) == 0 {
		return nil, "no spectra recorded"
	}
	var labels []string
	var grid [][]float64
	k := 0
	for _, c := range d.Cells(task) {
		sum := map[int64]float64{}
		cnt := map[int64]int{}
		for _, t := range c.Trials {
			for _, r := range rows[t.TrialID] {
				if !math.IsNaN(r.MaxCos) {
					sum[r.Index] += r.MaxCos
					cnt[r.Index]++
				}
			}
		}
		if len(cnt) == 0 {
			continue
		}
		var row []float64
		for j := int64(0); ; j++ {
			n, ok := cnt[j]
			if !ok {
				break
			}
			row = append(row, sum[j]/float64(n))
		}
		k = max(k, len(row))
		labels = append(labels, c.Label())
		grid = append(grid, row)
	}
	if len(grid) == 0 || k == 0 {
		return nil, "no max |cos| values recorded"
	}
	cm := viridis()
	cm.SetMin(0)
	cm.SetMax(1)
	g := heatGrid{rows: grid, cols: k}
	hm := plotter.NewHeatMap(g, cm.Palette(256))
	hm.Min, hm.Max = 0, 1
	hm.NaN = grey
	p := newPanel(task, "tuned singular direction j", "")
	p.Add(hm)
	// Rows top to bottom in table order.
	rev := slices.Clone(labels)
	slices.Reverse(rev)
	p.NominalY(rev...)
	p.Y.Tick.Label.Font.Size = tickSize
	ticks := make(plot.ConstantTicks, k)
	for j := range k {
		ticks[j] = plot.Tick{Value: float64(j), Label: fmt.Sprint(j + 1)}
	}
	p.X.Tick.Marker = ticks
	bar := plot.New()
	bar.Add(&plotter.ColorBar{ColorMap: cm, Vertical: true})
	bar.HideX()
	bar.Y.Label.Text = "max |cos|"
	for _, a := range []*plot.Axis{&bar.Y} {
		a.Label.TextStyle.Font = p.X.Label.TextStyle.Font
		a.Tick.Label.Font = p.X.Tick.Label.Font
		a.Tick.Length = vg.Points(3)
		a.Padding = 0
	}
	f := newFigure("maxcos", task,
		fmt.Sprintf("%s: max over base singular vectors of |cos| with each top tuned singular vector j, mean over layers and seeds; dark cells (< ε) are intruder dimensions.", task),
		[]*plot.Plot{p}, nil)
	f.colorBar = bar
	f.Height = max(panelHeight, vg.Length(len(labels))*vg.Points(11)+vg.Points(60))
	return []*Figure{f}, ""
}

// heatGrid is a GridXYZ over rows (first row drawn at the top).
type heatGrid struct {
	rows [][]float64
	cols int
}

func (g heatGrid) Dims() (c, r int) { return g.cols, len(g.rows) }
func (g heatGrid) X(c int) float64  { return float64(c) }
func (g heatGrid) Y(r int) float64  { return float64(r) }
func (g heatGrid) Z(c, r int) float64 {
	row := g.rows[len(g.rows)-1-r]
	if c >= len(row) {
		return math.NaN()
	}
	return row[c]
}

// intruders draws intruder counts against rank, one panel per ε.
func intruders(d *Data, task string) ([]*Figure, string) {
	es := d.epsilons(task)
	if len(es) == 0 {
		return nil, "no intruder counts recorded"
	}
	cells := d.Cells(task)
	var panels []*plot.Plot
	var legend []legendEntry
	for _, e := range es {
		p, l, ok := vsRankPanel(cells, IntruderMetric(e), fmt.Sprintf("ε = %g", e), "intruder dimensions (count)")
		if !ok {
			continue
		}
		for _, x := range l {
			if !slices.ContainsFunc(legend, func(y legendEntry) bool { return y.name == x.name }) {
				legend = append(legend, x)
			}
		}
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil, "no ranked trial has intruder counts"
	}
	return []*Figure{newFigure("intruders", task,
		fmt.Sprintf("%s: intruder dimensions (summed over targeted matrices) against rank, one panel per threshold ε, one line per method, α rule and setting swept within a rank; mean over seeds with 95%% CI bands; methods without a rank as dashed lines.", task),
		panels, legend)}, ""
}

// viridis is the perceptually uniform, colour-blind-safe map of matplotlib
// (van der Walt & Smith), from ten of its control points.
func viridis() palette.ColorMap {
	hex := []uint32{0x440154, 0x482878, 0x3E4A89, 0x31688E, 0x26828E, 0x1F9E89, 0x35B779, 0x6DCD59, 0xB4DE2C, 0xFDE725}
	cs := make([]color.Color, len(hex))
	for i, h := range hex {
		cs[i] = color.RGBA{uint8(h >> 16), uint8(h >> 8), uint8(h), 0xff}
	}
	cm, err := moreland.NewLuminance(cs)
	if err != nil {
		panic(err) // the control points have increasing luminance
	}
	return cm
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
