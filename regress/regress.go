package regress

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"peftbench/analysis"
	"peftbench/configs"
	"peftbench/results"
)

// Options configures a comparison.
type Options struct {
	// Alpha is the significance level of the Mann–Whitney test; 0 means 0.05.
	Alpha float64
	// MinEffect is the smallest relative change of the median that counts;
	// 0 means 0.05 (5%).
	MinEffect float64
	// WallMinEffect, when positive, compares wall_seconds too, with this
	// minimum relative effect (use something large, such as 0.25: wall
	// time on shared machines is noisy). Zero leaves wall time out.
	WallMinEffect float64
}

func (o Options) withDefaults() Options {
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	if o.MinEffect == 0 {
		o.MinEffect = 0.05
	}
	return o
}

// Verdict is the outcome of one row.
type Verdict string

// Verdicts. Regressed, Missing and NewFailure fail a comparison; the
// others do not.
const (
	Same         Verdict = "~"
	Improved     Verdict = "improved"
	Regressed    Verdict = "REGRESSED"
	Missing      Verdict = "MISSING"     // in the baseline, absent from the current run
	NewFailure   Verdict = "NEW FAILURE" // ok in the baseline, not ok now
	Insufficient Verdict = "too few"     // the test cannot reach α with these seeds
	Changed      Verdict = "changed"     // significant change of a metric of unknown direction
	New          Verdict = "new"         // in the current run only
	Fixed        Verdict = "fixed"       // not ok in the baseline, ok now
	StillFailing Verdict = "failing"     // not ok in either
)

// Fails reports whether the verdict fails the comparison.
func (v Verdict) Fails() bool { return v == Regressed || v == Missing || v == NewFailure }

// Row is one line of the report: a metric of a group of trials (seeds of
// one configuration) or one trial's status.
type Row struct {
	// Name identifies the group: task/method/r<rank>, plus the options that
	// tell configurations apart when several share task, method and rank;
	// for bench perf figures, the figure's name.
	Name   string
	Task   string
	Method string
	Rank   int64
	// Metric is the compared metric, or "status seed=N" for a trial row.
	Metric         string
	Unit           string
	HigherIsBetter bool
	Base, Cur      []float64 // per-seed (or per-run) samples
	// BaseText and CurText replace the summaries of the samples in the
	// table for trial rows (a status and its error).
	BaseText, CurText string
	Comparison        analysis.Comparison
	Verdict           Verdict
	Warnings          []string
}

// Report is the result of comparing a current run with a baseline.
type Report struct {
	Kind      string // "trials" or "perf"
	Baseline  string // where the baseline came from, for the header
	Current   string
	Alpha     float64
	MinEffect float64
	Rows      []Row
	// Warnings are caveats about the whole comparison (too few seeds, a
	// stale baseline); they never fail it.
	Warnings []string
}

// Regressions returns the rows whose verdict fails the comparison.
func (r *Report) Regressions() []Row {
	var out []Row
	for _, row := range r.Rows {
		if row.Verdict.Fails() {
			out = append(out, row)
		}
	}
	return out
}

// group is the trials of one configuration, by seed, in one run.
type group struct {
	task, method string
	rank         int64
	pairs        []string // flattened config without identity and seed, "key=value"
	order        int64    // smallest plan index seen, for display order
	base, cur    map[int64]*results.TrialRow
}

func (g *group) name(variant []string) string {
	n := g.task + "/" + g.method
	if g.rank != 0 {
		n += fmt.Sprintf("/r%d", g.rank)
	}
	if len(variant) > 0 {
		n += " " + strings.Join(variant, " ")
	}
	return n
}

// CompareTrials compares the trials of a current run with a baseline's.
// Trials are grouped by task, method, rank and every other setting except
// the seed; within a group, each metric's per-seed values are compared
// with a Mann–Whitney U test and the minimum effect. A trial ok in the
// baseline and missing or not ok in the current run is a regression of its
// own.
func CompareTrials(base, cur []results.TrialRow, opt Options) (*Report, error) {
	opt = opt.withDefaults()
	rep := &Report{Kind: "trials", Alpha: opt.Alpha, MinEffect: opt.MinEffect}
	groups := map[string]*group{}
	var dups []string
	add := func(rows []results.TrialRow, current bool) error {
		for i := range rows {
			row := &rows[i]
			key, pairs, err := configs.Key(row)
			if err != nil {
				return fmt.Errorf("regress: trial %s: config: %w", row.TrialID, errors.Unwrap(err))
			}
			g := groups[key]
			if g == nil {
				g = &group{task: row.Task, method: row.Method, rank: row.Rank, pairs: pairs, order: math.MaxInt64,
					base: map[int64]*results.TrialRow{}, cur: map[int64]*results.TrialRow{}}
				groups[key] = g
			}
			m := g.base
			if current {
				m = g.cur
			} else {
				g.order = min(g.order, row.Index)
			}
			if _, dup := m[row.Seed]; dup {
				dups = append(dups, fmt.Sprintf("%s/%s/r%d seed %d", row.Task, row.Method, row.Rank, row.Seed))
			}
			m[row.Seed] = row
		}
		return nil
	}
	if err := add(base, false); err != nil {
		return nil, err
	}
	if err := add(cur, true); err != nil {
		return nil, err
	}
	if len(dups) > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d trials appear twice in one run (the last row counts), e.g. %s", len(dups), dups[0]))
	}

	ordered := slices.Collect(maps.Values(groups))
	slices.SortFunc(ordered, func(a, b *group) int {
		return cmp.Or(cmp.Compare(a.order, b.order), cmp.Compare(a.task, b.task),
			cmp.Compare(a.method, b.method), cmp.Compare(a.rank, b.rank),
			slices.Compare(a.pairs, b.pairs))
	})
	variants := variantPairs(ordered)

	missingGroups, newGroups := 0, 0
	for _, g := range ordered {
		name := g.name(variants[g])
		rowOf := func(metric string) Row {
			return Row{Name: name, Task: g.task, Method: g.method, Rank: g.rank, Metric: metric}
		}
		if len(g.base) == 0 {
			newGroups++
			r := rowOf("trials")
			r.Verdict, r.BaseText, r.CurText = New, "—", fmt.Sprintf("%d trials", len(g.cur))
			rep.Rows = append(rep.Rows, r)
			continue
		}
		if len(g.cur) == 0 {
			missingGroups++
		}
		rep.Rows = append(rep.Rows, statusRows(g, rowOf)...)
		if !hasOK(g.cur) {
			continue // every baseline trial is already a missing or failed row
		}
		if r, ok := paramsRow(g, rowOf); ok {
			rep.Rows = append(rep.Rows, r)
		}
		for _, m := range groupMetrics(g, opt) {
			r := rowOf(m.Metric.Name)
			r.HigherIsBetter = m.Metric.Higher
			r.Base, r.Cur = samples(g.base, m.Metric), samples(g.cur, m.Metric)
			if len(r.Base) == 0 && len(r.Cur) == 0 {
				continue
			}
			effect := opt.MinEffect
			if m.Metric.Name == WallMetric.Name {
				effect = opt.WallMinEffect
			}
			judge(&r, analysis.CompareOptions{HigherIsBetter: m.Metric.Higher, Alpha: opt.Alpha, MinEffect: effect}, m.known)
			rep.Rows = append(rep.Rows, r)
		}
	}
	if missingGroups > 0 && newGroups > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d configurations of the baseline are missing and %d are new: if the sweep file or an option default changed on purpose, refresh the baseline (see ci/README.md)", missingGroups, newGroups))
	}
	rep.Warnings = append(rep.Warnings, fewSeedsWarning(rep.Rows, opt.Alpha)...)
	return rep, nil
}

// variantPairs returns, for each group that shares task, method and rank
// with another, the config pairs that tell it apart from those others.
func variantPairs(groups []*group) map[*group][]string {
	bySlot := map[string][]*group{}
	for _, g := range groups {
		k := fmt.Sprint(g.task, "\x00", g.method, "\x00", g.rank)
		bySlot[k] = append(bySlot[k], g)
	}
	out := map[*group][]string{}
	for _, gs := range bySlot {
		if len(gs) < 2 {
			continue
		}
		ps := make([][]string, len(gs))
		for i, g := range gs {
			ps[i] = g.pairs
		}
		for i, v := range configs.Varying(ps) {
			if len(v) > 0 {
				out[gs[i]] = v
			}
		}
	}
	return out
}

// paramsRow reports a change in the trainable parameter count of g's ok
// trials: exact, not statistical, and a warning (Changed) rather than a
// regression, since a method's count changes on purpose as often as not.
func paramsRow(g *group, rowOf func(string) Row) (Row, bool) {
	counts := func(run map[int64]*results.TrialRow) []int64 {
		var cs []int64
		for _, r := range run {
			if r.Status == results.StatusOK && !slices.Contains(cs, r.TrainableParams) {
				cs = append(cs, r.TrainableParams)
			}
		}
		slices.Sort(cs)
		return cs
	}
	b, c := counts(g.base), counts(g.cur)
	if len(b) == 0 || len(c) == 0 || slices.Equal(b, c) {
		return Row{}, false
	}
	r := rowOf("trainable_params")
	r.Verdict = Changed
	r.BaseText, r.CurText = fmt.Sprint(b), fmt.Sprint(c)
	r.Warnings = []string{fmt.Sprintf("trainable parameters changed from %v to %v", b, c)}
	return r, true
}

// statusRows compares the status of each seed of g.
func statusRows(g *group, rowOf func(string) Row) []Row {
	var rows []Row
	for _, seed := range slices.Sorted(maps.Keys(g.base)) {
		b, c := g.base[seed], g.cur[seed]
		r := rowOf(fmt.Sprintf("status seed=%d", seed))
		r.BaseText = statusText(b)
		switch {
		case b.Status == results.StatusOK && c == nil:
			r.Verdict, r.CurText = Missing, "absent"
		case b.Status == results.StatusOK && c.Status != results.StatusOK:
			r.Verdict, r.CurText = NewFailure, statusText(c)
		case b.Status != results.StatusOK && c != nil && c.Status == results.StatusOK:
			r.Verdict, r.CurText = Fixed, statusText(c)
		case b.Status != results.StatusOK:
			r.Verdict, r.CurText = StillFailing, "absent"
			if c != nil {
				r.CurText = statusText(c)
			}
		default:
			continue
		}
		rows = append(rows, r)
	}
	return rows
}

func statusText(r *results.TrialRow) string {
	if r.Status == results.StatusOK || r.Error == "" {
		return r.Status
	}
	const max = 60
	e := strings.Join(strings.Fields(r.Error), " ")
	if len(e) > max {
		e = e[:max] + "…"
	}
	return r.Status + ": " + e
}

func hasOK(m map[int64]*results.TrialRow) bool {
	for _, r := range m {
		if r.Status == results.StatusOK {
			return true
		}
	}
	return false
}

type groupMetric struct {
	Metric Metric
	known  bool // direction known: a significant change is a verdict, not a warning
}

// groupMetrics lists the metrics to compare for g: the fixed table, wall
// time when asked for, then every Extra key of either run, sorted.
func groupMetrics(g *group, opt Options) []groupMetric {
	var ms []groupMetric
	for _, m := range Metrics {
		ms = append(ms, groupMetric{m, true})
	}
	if opt.WallMinEffect > 0 {
		ms = append(ms, groupMetric{WallMetric, true})
	}
	extras := map[string]bool{}
	for _, run := range []map[int64]*results.TrialRow{g.base, g.cur} {
		for _, r := range run {
			for k := range r.Extra {
				if !baseModelExtra(k) {
					extras[k] = true
				}
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(extras)) {
		m, known := extraMetric(k)
		ms = append(ms, groupMetric{m, known})
	}
	return ms
}

// samples returns the metric over the ok trials of a run, in seed order,
// leaving out trials that do not report it.
func samples(run map[int64]*results.TrialRow, m Metric) []float64 {
	var xs []float64
	for _, seed := range slices.Sorted(maps.Keys(run)) {
		r := run[seed]
		if r.Status != results.StatusOK {
			continue
		}
		if v := m.Value(r); !math.IsNaN(v) {
			xs = append(xs, v)
		}
	}
	return xs
}

// judge fills r's comparison and verdict from its samples. For a metric of
// unknown direction a significant change is Changed, a warning.
func judge(r *Row, co analysis.CompareOptions, known bool) {
	c := analysis.Compare(r.Base, r.Cur, co)
	r.Comparison = c
	r.Warnings = c.Warnings
	switch c.Verdict {
	case analysis.Same:
		r.Verdict = Same
	case analysis.Improved, analysis.Regressed:
		switch {
		case !known:
			r.Verdict = Changed
			r.Warnings = append(r.Warnings, "direction unknown: a change, not a regression")
		case c.Verdict == analysis.Improved:
			r.Verdict = Improved
		case len(r.Cur) == 0:
			r.Verdict = Missing
		default:
			r.Verdict = Regressed
		}
	case analysis.Insufficient:
		r.Verdict = Insufficient
		if len(r.Base) == 0 {
			r.Verdict = New
		}
	}
}

// fewSeedsWarning summarises the rows the test could not judge.
func fewSeedsWarning(rows []Row, alpha float64) []string {
	n := 0
	var first *Row
	for i := range rows {
		if rows[i].Verdict == Insufficient {
			if first == nil {
				first = &rows[i]
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	need := 2
	for minP(need, need) >= alpha {
		need++
	}
	return []string{fmt.Sprintf("%d comparisons have too few samples (seeds or runs) to reach α = %g (first: %s %s, %d vs %d); %d vs %d is the least that can",
		n, alpha, first.Name, first.Metric, len(first.Base), len(first.Cur), need, need)}
}

// minP is the smallest two-sided p-value of the exact Mann–Whitney test
// with samples of n1 and n2 values: 2/C(n1+n2, n1).
func minP(n1, n2 int) float64 {
	c := 1.0
	for i := 1; i <= n1; i++ {
		c = c * float64(n2+i) / float64(i)
	}
	return min(1, 2/c)
}
