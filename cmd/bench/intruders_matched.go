package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"peftbench/analysis"
)

// matchedRow is one curve — a configuration's trials along one swept
// setting (the learning rate), seed by seed — read at one target loss.
// Shuttleworth et al. 2024 compare LoRA with full fine-tuning at matched
// accuracy; a comparison at equal learning rate mostly measures which run
// learnt more.
type matchedRow struct {
	Task   string   `json:"task"`
	Method string   `json:"method"`
	Rank   int64    `json:"rank"`
	Alpha  *float64 `json:"alpha,omitempty"`
	// Settings are the other varying settings; the along axis is removed.
	Settings []string `json:"settings,omitempty"`
	Along    string   `json:"along"`  // the setting the curve runs along
	Points   int      `json:"points"` // configurations on the curve
	// LossLo and LossHi bound the curve's mean target loss.
	LossLo  float64 `json:"loss_lo"`
	LossHi  float64 `json:"loss_hi"`
	Level   float64 `json:"target_loss"`
	Epsilon float64 `json:"epsilon"`
	// Seeds read at Level, and the count interpolated on each (see
	// analysis.ReadAt); none when the curve does not reach Level.
	Seeds     []int64          `json:"seeds"`
	Values    []float64        `json:"values"`
	Intruders analysis.Summary `json:"intruders"`
	AllSeeds  int              `json:"all_seeds"` // seeds on the curve

	curve int // index of the curve, for the table's rows
}

// curve is the cells of one configuration along the along axis.
type curve struct {
	first *intruderCell
	rest  []string
	cells []*intruderCell
}

// isAlong reports whether the config pair p ("train.lr=0.001") sets the
// along axis, named in full ("train.lr") or by its last part ("lr").
func isAlong(p, along string) bool {
	path, _, _ := strings.Cut(p, "=")
	return path == along || strings.HasSuffix(path, "."+along)
}

// matchedRows reads every curve of cells at the target-loss levels: the
// given ones for every task, or else each task's full fine-tuning losses.
// notes say which tasks have no levels.
func matchedRows(cells []*intruderCell, along string, levels []float64) (rows []*matchedRow, notes []string) {
	var curves []*curve
	byKey := map[string]*curve{}
	for _, c := range cells {
		var rest []string
		for _, p := range c.Settings {
			if !isAlong(p, along) {
				rest = append(rest, p)
			}
		}
		alpha := ""
		if c.Alpha != nil {
			alpha = strconv.FormatFloat(*c.Alpha, 'g', -1, 64)
		}
		k := strings.Join(append([]string{c.Task, c.Method, fmt.Sprint(c.Rank), alpha}, rest...), "\x00")
		cv, ok := byKey[k]
		if !ok {
			cv = &curve{first: c, rest: rest}
			byKey[k] = cv
			curves = append(curves, cv)
		}
		cv.cells = append(cv.cells, c)
	}
	taskLevels := map[string][]float64{}
	var tasks []string
	for _, c := range cells {
		if !slices.Contains(tasks, c.Task) {
			tasks = append(tasks, c.Task)
		}
		if levels == nil && c.Method == "full" && c.TargetLoss.N > 0 {
			taskLevels[c.Task] = append(taskLevels[c.Task], c.TargetLoss.Mean)
		}
	}
	for _, t := range tasks {
		if levels != nil {
			taskLevels[t] = levels
		}
		slices.Sort(taskLevels[t])
		if len(taskLevels[t]) == 0 {
			notes = append(notes, fmt.Sprintf("%s: no full fine-tuning to match; pass --at with target losses", t))
		}
	}
	for ci, cv := range curves {
		c := cv.first
		var runs []analysis.Run
		lo, hi := 0.0, 0.0
		for i, cc := range cv.cells {
			for j, s := range cc.Seeds {
				runs = append(runs, analysis.Run{Config: i, Seed: s, X: cc.TargetLosses[j], Y: float64(cc.Counts[j])})
			}
			m := cc.TargetLoss.Mean
			if i == 0 || m < lo {
				lo = m
			}
			if i == 0 || m > hi {
				hi = m
			}
		}
		seeds := map[int64]bool{}
		for _, r := range runs {
			seeds[r.Seed] = true
		}
		for _, level := range taskLevels[c.Task] {
			m := analysis.ReadAt(runs, level)
			rows = append(rows, &matchedRow{Task: c.Task, Method: c.Method, Rank: c.Rank, Alpha: c.Alpha, Settings: cv.rest,
				Along: along, Points: len(cv.cells), LossLo: lo, LossHi: hi, Level: level, Epsilon: c.Epsilon,
				Seeds: m.Seeds, Values: m.Values, Intruders: m.Summary, AllSeeds: len(seeds), curve: ci})
		}
	}
	return rows, notes
}

// writeMatched prints one table per task: a row per curve, a column per
// target-loss level.
func writeMatched(w io.Writer, rows []*matchedRow, notes []string, eps float64, along string) error {
	var tasks []string
	for _, r := range rows {
		if !slices.Contains(tasks, r.Task) {
			tasks = append(tasks, r.Task)
		}
	}
	for i, task := range tasks {
		var levels []float64
		var curves [][]*matchedRow // rows of one curve, in level order
		for _, r := range rows {
			if r.Task != task {
				continue
			}
			if !slices.Contains(levels, r.Level) {
				levels = append(levels, r.Level)
			}
			if n := len(curves); n > 0 && curves[n-1][0].curve == r.curve {
				curves[n-1] = append(curves[n-1], r)
			} else {
				curves = append(curves, []*matchedRow{r})
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
