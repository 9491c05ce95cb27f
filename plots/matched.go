package plots

import (
	"fmt"
	"slices"
	"strings"

	"gonum.org/v1/plot"

	"peftbench/analysis"
)

// matchAlong is the swept setting a matched curve runs along.
const matchAlong = "train.lr"

// curveCells merges the cells of a task that differ only in the learning
// rate into one cell per curve (its pairs without the learning rate), and
// returns, per merged cell, the original cells in their order along it.
func curveCells(cells []*Cell) ([]*Cell, map[*Cell][]*Cell) {
	var merged []*Cell
	parts := map[*Cell][]*Cell{}
	byKey := map[string]*Cell{}
	for _, c := range cells {
		var pairs []string
		for _, p := range c.pairs {
			if path, _, _ := strings.Cut(p, "="); path != matchAlong {
				pairs = append(pairs, p)
			}
		}
		k := strings.Join(append([]string{c.Method, fmt.Sprint(c.Rank)}, pairs...), "\x00")
		m, ok := byKey[k]
		if !ok {
			m = &Cell{Task: c.Task, Method: c.Method, Rank: c.Rank, Alpha: c.Alpha, pairs: pairs}
			byKey[k] = m
			merged = append(merged, m)
		}
		m.Trials = append(m.Trials, c.Trials...)
		parts[m] = append(parts[m], c)
	}
	return merged, parts
}

// readCurve reads metric m of a merged cell at a target loss.
func readCurve(parts []*Cell, m Metric, level float64) analysis.Matched {
	var runs []analysis.Run
	for i, c := range parts {
		for _, t := range c.Trials {
			runs = append(runs, analysis.Run{Config: i, Seed: t.Seed, X: t.TargetLoss, Y: m.Get(t)})
		}
	}
	return analysis.ReadAt(runs, level)
}

// intrudersMatched draws intruder counts at matched target loss against
// rank, the comparison of Shuttleworth et al. 2024: each configuration's
// runs along the learning rate form a curve per seed, read at each full
// fine-tuning run's target loss (one panel per level).
func intrudersMatched(d *Data, task string) ([]*Figure, string) {
	es := d.epsilons(task)
	if len(es) == 0 {
		return nil, "no intruder counts recorded"
	}
	eps := es[nearest(es, 0.5)]
	m := IntruderMetric(eps)
	merged, parts := curveCells(d.Cells(task))
	var levels []float64
	for _, c := range merged {
		if c.Ranked() {
			continue
		}
		for _, p := range parts[c] {
			if s := p.Summary(TargetLoss); s.N > 0 {
				levels = append(levels, s.Mean)
			}
		}
	}
	if len(levels) == 0 {
		return nil, "no method without a rank (full fine-tuning) to match target loss against"
	}
	if !slices.ContainsFunc(merged, func(c *Cell) bool { return c.Ranked() && len(parts[c]) > 1 }) {
		return nil, "no adapter configuration is swept over the learning rate (the matched comparison reads learning-rate curves)"
	}
	slices.Sort(levels)
	var panels []*plot.Plot
	var legend []legendEntry
	for _, level := range levels {
		var ranks []int64
		reads := map[*Cell]analysis.Matched{}
		for _, c := range merged {
			r := readCurve(parts[c], m, level)
			if !r.Reached {
				continue
			}
			reads[c] = r
			if c.Ranked() && !slices.Contains(ranks, c.Rank) {
				ranks = append(ranks, c.Rank)
			}
		}
		if len(ranks) == 0 {
			continue
		}
		slices.Sort(ranks)
		p := newPanel(fmt.Sprintf("target loss %.3f", level), "rank r (log scale)", fmt.Sprintf("intruders at ε = %g (count)", eps))
		rankAxis(p, ranks)
		for _, ln := range lines(merged, true) {
			style, ok := drawRankLine(p, ln.cells, func(c *Cell) (point, bool) {
				r, ok := reads[c]
				if !ok {
					return point{}, false
				}
				lo, hi := ci(r.Summary)
				x := float64(c.Rank)
				return point{x, r.Summary.Mean, x, x, lo, hi}, true
			}, ln.style)
			if !ok {
				continue
			}
			if !slices.ContainsFunc(legend, func(e legendEntry) bool { return e.name == ln.label }) {
				legend = append(legend, styleEntry(ln.label, style, true))
			}
		}
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil, "no adapter's learning-rate curve reaches a full fine-tuning target loss"
	}
	return []*Figure{newFigure("intruders-matched", task,
		fmt.Sprintf("%s: intruder dimensions at ε = %g against rank at matched target loss: each configuration's runs over the learning rate form a curve per seed, interpolated at each full fine-tuning run's target loss (one panel each); mean over seeds with 95%% CI bands; a rank missing from a line did not reach that loss at any learning rate.", task, eps),
		panels, legend)}, ""
}
