package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// statusRunning counts the trials with a live step log and no shard: a
// trial that is running, or whose run was killed (a rerun resumes it).
// From the folder alone the two look the same; the row says when the log
// was last written.
const statusRunning = "running"

// liveProblems lists the trials of the plan that have a live log
// (trials/<id>/live.jsonl) but neither a shard nor a damaged one: the
// shard wins over a log left beside it.
func liveProblems(dir string, trials []sweeps.Trial, has func(id string) bool, settings map[string]string) ([]trialProblem, error) {
	ids, err := results.LiveTrials(dir)
	if err != nil {
		return nil, fmt.Errorf("bench status: %w", err)
	}
	byID := make(map[string]sweeps.Trial, len(trials))
	for _, t := range trials {
		byID[t.ID] = t
	}
	var out []trialProblem
	for _, id := range ids {
		t, ok := byID[id]
		if !ok || has(id) {
			continue
		}
		lv, err := results.ReadLive(dir, id)
		if errors.Is(err, os.ErrNotExist) {
			continue // its shard was written meanwhile
		}
		p := trialProblem{TrialID: id, Index: int64(t.Index), Method: t.Method, Rank: int64(t.Rank), Task: t.Task, Seed: t.Seed,
			Settings: settings[id], Status: statusRunning}
		if err != nil {
			p.Error = "live log unreadable: " + err.Error()
			out = append(out, p)
			continue
		}
		p.Attempt = lv.Header.Attempt
		p.Error = fmt.Sprintf("attempt %d, no step yet", lv.Header.Attempt)
		if n := len(lv.Steps); n > 0 {
			// The last step, and the last loss reported (the train loss at
			// the trainer's log points, an evaluation's), else the last row.
			last, shown := lv.Steps[n-1].Step, lv.Steps[n-1]
			for i := n - 1; i >= 0; i-- {
				if lv.Steps[i].Metric == "loss" {
					shown = lv.Steps[i]
					break
				}
			}
			p.LastStep = &last
			p.Error = fmt.Sprintf("attempt %d, step %d of %d (%s %s %s at step %d)", lv.Header.Attempt, last, t.Train.Steps,
				shown.Split, shown.Metric, strconv.FormatFloat(shown.Value, 'g', 4, 64), shown.Step)
		}
		p.Error += fmt.Sprintf(", last written %s: running, or interrupted (rerun to resume)", lv.Modified.Local().Format(time.DateTime))
		out = append(out, p)
	}
	return out, nil
}
