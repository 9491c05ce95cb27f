package runner

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"peftbench/configs"
	"peftbench/results"
	"peftbench/sweeps"
)

// runTune runs a tune sweep ([protocol] kind = "tune", sweeps.Protocol) in
// two phases:
//
//  1. the search: the plan's trials (Phase "search"), each configuration
//     group's points on the tune seeds (runSearch);
//  2. per group, the point whose mean metric over its tune seeds is best
//     (chooseTune: read on validation, never on the test split) is run on
//     the test seeds: new trials, Phase "test", whose IDs follow from the
//     choice (sweeps.Plan.TestTrial).
//
// The selection is written to tune.json between the phases. Both phases
// resume like any sweep: the search trials that finished are not run
// again, the choice is recomputed from their shards (the same shards give
// the same choice, so the same test trials), and the test trials that
// finished are not run again. Each phase is one run of the local
// executor, with its own sweep-started and sweep-finished events; the
// manifest lists the search trials until the choice is made, then the
// test trials too. The summary returned is the second phase's, with
// Skipped counting the trials of either phase finished before this call.
func runTune(ctx context.Context, plan *sweeps.Plan, opts Options) (Summary, error) {
	start := time.Now()
	pr := plan.Protocol
	if pr.Kind != "tune" {
		return Summary{}, fmt.Errorf("runner: sweep %q: unknown [protocol] kind %q", plan.Name, pr.Kind)
	}
	higher, err := tuneDirection(pr)
	if err != nil {
		return Summary{}, fmt.Errorf("runner: sweep %q: %w", plan.Name, err)
	}
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, "tune: "+format+"\n", args...)
		}
	}
	sum, err := runSearch(ctx, plan, opts)
	if err != nil {
		return sum, err
	}
	shards, err := results.ReadShards(sum.Dir)
	if err != nil {
		return sum, fmt.Errorf("runner: %w", err)
	}
	rec, tests, err := chooseTune(plan, shards, higher)
	if err != nil {
		return sum, err
	}
	if err := results.WriteTune(sum.Dir, rec); err != nil {
		return sum, fmt.Errorf("runner: %w", err)
	}
	if err := dropUnchosen(plan, rec, sum.Dir); err != nil {
		return sum, err
	}
	logTune(rec, logf)
	if len(tests) == 0 {
		sum.Elapsed = time.Since(start)
		return sum, nil
	}
	skipped := sum.Skipped
	for _, t := range tests {
		if s, ok := shards[t.ID]; ok && finished(s.Trial.Status) {
			skipped++
		}
	}
	full := *plan
	full.Trials = append(slices.Clone(plan.Trials), tests...)
	sum2, err := runTrials(ctx, &full, opts)
	sum2.Skipped = skipped
	sum2.Elapsed = time.Since(start)
	return sum2, err
}

// runSearch is phase 1 of a tune sweep: it runs the plan's search trials,
// each to its end, with the local executor. It is the seam for early
// stopping: a scheduler that stops unpromising search trials at a rung
// (successive halving, [early_stopping]) replaces this call; chooseTune
// then reads what each trial recorded, and a trial recorded stopped does
// not compete.
func runSearch(ctx context.Context, plan *sweeps.Plan, opts Options) (Summary, error) {
	return runTrials(ctx, plan, opts)
}

// tuneDirection is whether a higher metric is better: the protocol's
// direction, else the metric's known one.
func tuneDirection(pr *sweeps.Protocol) (bool, error) {
	switch pr.Direction {
	case "max":
		return true, nil
	case "min":
		return false, nil
	case "":
	default:
		return false, fmt.Errorf("[protocol] direction %q: want \"max\" or \"min\"", pr.Direction)
	}
	if c, ok := configs.Lookup(pr.Metric); ok {
		return c.Higher, nil
	}
	// The validation twins of target_metric and target_loss (the builtin
	// trainer's val_metric and val_loss summaries).
	switch pr.Metric {
	case "val_metric":
		return true, nil
	case "val_loss":
		return false, nil
	}
	return false, fmt.Errorf("[protocol] metric %q: its direction is unknown; set direction = \"max\" or \"min\"", pr.Metric)
}

// tuneMetric is a trial's value of the protocol's metric: a column of
// trials.parquet or an extra metric; NaN when the trial has none.
func tuneMetric(row *results.TrialRow, name string) float64 {
	c, _ := configs.Lookup(name)
	return c.Value(row)
}

// chooseTune makes the selection of a tune sweep from its search trials'
// shards and returns it with the test trials of the groups that have a
// choice. A point competes when every one of its search trials ended ok
// with a finite metric; its score is their mean. A point with a trial
// that diverged, was stopped early, or lacks the metric does not compete.
// A group waits (no choice, no test trials) while any of its search
// trials has no finished shard (failed, timed out, cancelled, not run):
// a rerun retries those, and choosing without them could change the
// choice later. A group none of whose points competes gets no test
// trials. Ties go to the first point in plan order. Test trials take plan
// positions after the search trials, test-seed count per group, by group
// order, so that a trial's position does not depend on other groups'
// choices.
func chooseTune(plan *sweeps.Plan, shards map[string]*results.Shard, higher bool) (*results.TuneRecord, []sweeps.Trial, error) {
	pr := plan.Protocol
	dir := "max"
	if !higher {
		dir = "min"
	}
	rec := &results.TuneRecord{Sweep: plan.Name, Metric: pr.Metric, Direction: dir, Axes: pr.Axes,
		TuneSeeds: pr.TuneSeeds, TestSeeds: pr.TestSeeds}
	byID := make(map[string]sweeps.Trial, len(plan.Trials))
	for _, t := range plan.Trials {
		byID[t.ID] = t
	}
	var tests []sweeps.Trial
	for gi, g := range pr.Groups {
		rg := results.TuneGroup{Label: g.Label, Method: g.Method, Rank: g.Rank, Task: g.Task, Chosen: -1}
		waiting := 0
		best := math.NaN()
		for _, pt := range g.Points {
			p := results.TunePoint{Values: pt.Values, Trials: pt.Trials}
			sum, n := 0.0, 0
			for _, id := range pt.Trials {
				s, ok := shards[id]
				var st string
				if ok {
					st = s.Trial.Status
				}
				switch {
				case st == results.StatusOK:
					v := tuneMetric(&s.Trial, pr.Metric)
					if math.IsNaN(v) || math.IsInf(v, 0) {
						p.Reason = cmpReason(p.Reason, fmt.Sprintf("trial %s reports no finite %s", id, pr.Metric))
						continue
					}
					sum += v
					n++
				case st == results.StatusDiverged || st == results.StatusStopped:
					p.Reason = cmpReason(p.Reason, fmt.Sprintf("trial %s (seed %d) %s", id, byID[id].Seed, st))
				default:
					waiting++
					if st == "" {
						st = "not run"
					}
					p.Reason = cmpReason(p.Reason, fmt.Sprintf("trial %s (seed %d) %s", id, byID[id].Seed, st))
				}
			}
			if p.Reason == "" && n == len(pt.Trials) && n > 0 {
				score := sum / float64(n)
				p.Score = &score
				if rg.Chosen < 0 || (higher && score > best) || (!higher && score < best) {
					rg.Chosen, best = len(rg.Points), score
				}
			}
			rg.Points = append(rg.Points, p)
		}
		switch {
		case waiting > 0:
			rg.Chosen = -1
			rg.Note = fmt.Sprintf("waiting: %d search trial(s) did not end ok or diverged; rerun the sweep to retry them, then the group is chosen and tested", waiting)
		case rg.Chosen < 0:
			rg.Note = fmt.Sprintf("no test trials: none of its %d point(s) has a finite %s on every tune seed (each diverged, was stopped, or did not report it)", len(g.Points), pr.Metric)
		default:
			s := byID[g.Points[rg.Chosen].Trials[0]]
			for k, seed := range pr.TestSeeds {
				t, err := plan.TestTrial(s, seed, len(plan.Trials)+gi*len(pr.TestSeeds)+k)
				if err != nil {
					return nil, nil, fmt.Errorf("runner: %w", err)
				}
				tests = append(tests, t)
				rg.TestTrials = append(rg.TestTrials, t.ID)
			}
		}
		rec.Groups = append(rec.Groups, rg)
	}
	return rec, tests, nil
}

// cmpReason keeps the first reason a point does not compete.
func cmpReason(have, next string) string {
	if have != "" {
		return have
	}
	return next
}

// logTune writes one line per group: the choice, or why there is none.
func logTune(rec *results.TuneRecord, logf func(string, ...any)) {
	chosen := 0
	for _, g := range rec.Groups {
		if p := g.ChosenPoint(); p != nil {
			chosen++
			logf("%s: chose %s (%s %.4g, mean of %d tune seed(s), best of %d points); %d test trials",
				g.Label, FormatValues(p.Values, rec.Axes), rec.Metric, *p.Score, len(p.Trials), len(g.Points), len(g.TestTrials))
		} else {
			logf("%s: %s", g.Label, g.Note)
		}
	}
	logf("%d of %d groups chosen on %s (%s); test seeds %v", chosen, len(rec.Groups), rec.Metric, rec.Direction, rec.TestSeeds)
}

// FormatValues writes tuned values as "lr=0.003 alpha=16", axes in order
// and any other key after them by name.
func FormatValues(vals map[string]any, axes []string) string {
	keys := slices.Clone(axes)
	var rest []string
	for k := range vals {
		if !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	var parts []string
	for _, k := range append(keys, rest...) {
		if v, ok := vals[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	if len(parts) == 0 {
		return "(no tuned value applies)"
	}
	return strings.Join(parts, " ")
}

// dropUnchosen removes the test trials of the points a chosen group no
// longer chooses: a forced rerun after a grid changed keeps every test
// trial a point could still choose (dropStale), and once the choice is
// made, those of the other points would otherwise sit in trials.parquet's
// test phase beside the current choice's. Groups without a choice keep
// theirs until they have one.
func dropUnchosen(plan *sweeps.Plan, rec *results.TuneRecord, dir string) error {
	byID := make(map[string]sweeps.Trial, len(plan.Trials))
	for _, t := range plan.Trials {
		byID[t.ID] = t
	}
	for _, g := range rec.Groups {
		if g.Chosen < 0 {
			continue
		}
		for j, pt := range g.Points {
			s, ok := byID[pt.Trials[0]]
			if j == g.Chosen || !ok {
				continue
			}
			for _, seed := range rec.TestSeeds {
				t, err := plan.TestTrial(s, seed, 0)
				if err != nil {
					return fmt.Errorf("runner: %w", err)
				}
				if err := os.RemoveAll(results.ShardDir(dir, t.ID)); err != nil {
					return fmt.Errorf("runner: %w", err)
				}
			}
		}
	}
	return nil
}
