package main

import (
	"fmt"
	"io"
	"slices"

	"peftbench/configs"
)

// writeMatched prints one table per task: a row per curve, a column per
// target-loss level.
func writeMatched(w io.Writer, rows []*configs.MatchedRow, notes []string, eps float64, along string) error {
	var tasks []string
	for _, r := range rows {
		if !slices.Contains(tasks, r.Task) {
			tasks = append(tasks, r.Task)
		}
	}
	for i, task := range tasks {
		var levels []float64
		var curves [][]*configs.MatchedRow // rows of one curve, in level order
		for _, r := range rows {
			if r.Task != task {
				continue
			}
			if !slices.Contains(levels, r.Level) {
				levels = append(levels, r.Level)
			}
			if n := len(curves); n > 0 && curves[n-1][0].Curve == r.Curve {
				curves[n-1] = append(curves[n-1], r)
			} else {
				curves = append(curves, []*configs.MatchedRow{r})
			}
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s: intruders@%g at matched target loss, interpolated along %s seed by seed (mean ± SD over seeds; - where the curve does not reach the loss; n=k where only k seeds ran)\n", task, eps, along)
		head := []string{"METHOD", "RANK", "ALPHA", "SETTINGS", "POINTS", "LOSS RANGE"}
		for _, l := range levels {
			head = append(head, fmt.Sprintf("LOSS %.3f", l))
		}
		tw := newTable(w, head...)
		for _, cv := range curves {
			r := cv[0]
			rank, alpha, settings := configColumns(r.Rank, r.Alpha, r.Settings)
			row := []string{r.Method, rank, alpha, settings, fmt.Sprint(r.Points), fmt.Sprintf("%.3f–%.3f", r.LossLo, r.LossHi)}
			for _, x := range cv {
				cell := fmtSummary(x.Intruders, 1)
				if n := len(x.Values); n > 0 && n < x.AllSeeds {
					cell += fmt.Sprintf(" (n=%d)", n)
				}
				row = append(row, cell)
			}
			tw.row(row...)
		}
		if err := tw.flush(); err != nil {
			return err
		}
	}
	for _, n := range notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}
