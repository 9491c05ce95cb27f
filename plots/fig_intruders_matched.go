package plots

import (
	"fmt"
	"slices"

	"gonum.org/v1/plot"

	"peftbench/analysis"
	"peftbench/configs"
)

func init() {
	register(kind{order: 70, name: "intruders-matched", summary: "intruder dimensions vs rank at matched target loss: learning-rate curves read at full fine-tuning's losses", build: intrudersMatched})
}

// matchAlong is the swept setting a matched curve runs along.
const matchAlong = "train.lr"

// curveCells merges the cells of a task that differ only in the learning
// rate into one cell per curve (configs.Curves), and returns, per merged
// cell, the original cells in their order along it.
func curveCells(cells []*Cell) ([]*Cell, map[*Cell][]*Cell) {
	return configs.Curves(cells, matchAlong)
}

// readCurve reads metric m of a merged cell at a target loss.
func readCurve(parts []*Cell, m Metric, level float64) analysis.Matched {
	return configs.ReadCurve(parts, m, level)
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
	cells := d.Cells(task)
	merged, parts := curveCells(cells)
	levels := configs.ReferenceLevels(cells)
	if len(levels) == 0 {
		return nil, "no method without a rank (full fine-tuning) to match target loss against"
	}
	if !slices.ContainsFunc(merged, func(c *Cell) bool { return c.Ranked() && len(parts[c]) > 1 }) {
		return nil, "no adapter configuration is swept over the learning rate (the matched comparison reads learning-rate curves)"
	}
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
		fmt.Sprintf("%s: intruder dimensions at ε = %g against rank at matched target loss: each configuration's runs over the learning rate form a curve per seed, interpolated at each full fine-tuning run's target loss (one panel each); mean over seeds with CI bands; %s; a rank missing from a line did not reach that loss at any learning rate.", task, eps, d.ciNote(task)),
		panels, legend)}, ""
}
