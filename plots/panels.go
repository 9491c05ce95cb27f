package plots

import (
	"fmt"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"

	"peftbench/configs"
)

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
	if note := addBase(d, task, p, xm, ym, logX); note != "" {
		legend = append(legend, baseEntry)
		caption += " " + note
	}
	return []*Figure{newFigure(name, task, caption, []*plot.Plot{p}, legend)}, ""
}

// addBase draws the base model's reference on a scatter of ym against xm:
// its point where both base values are known (forgetting 0 and the base
// metric), else a dotted line at the one known, and returns the caption's
// sentence on it ("" when nothing was drawn).
func addBase(d *Data, task string, p *plot.Plot, xm, ym Metric, logX bool) string {
	bx, okx := d.baseValue(task, xm)
	by, oky := d.baseValue(task, ym)
	if logX && bx <= 0 {
		okx = false
	}
	switch {
	case okx && oky:
		addBasePoint(p, bx, by)
		return "The cross is the base model before fine-tuning (step 0)."
	case oky:
		addBaseY(p, by)
		return "The dotted line is the base model before fine-tuning (step 0)."
	case okx:
		y0, y1 := p.Y.Min, p.Y.Max
		if l, err := plotter.NewLine(plotter.XYs{{X: bx, Y: y0}, {X: bx, Y: y1}}); err == nil && y0 < y1 {
			l.LineStyle = baseLine
			p.Add(l)
			return "The dotted line is the base model before fine-tuning (step 0)."
		}
	}
	return ""
}
