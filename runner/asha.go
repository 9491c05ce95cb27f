package runner

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"peftbench/results"
	"peftbench/sweeps"
	"peftbench/trainer"
)

// Successive halving ([early_stopping] kind = "asha") on the local
// executor, synchronous so that it is deterministic: the trials of a group
// (sweeps.EarlyStopping.Group) all run to rung 0; once every one has, the
// best ⌈n/eta⌉ by the rung's metric (ties to the lower plan index) are
// promoted and rerun from step 0 to the next rung under
// trainer.WithStopAfter (training is deterministic, so their first steps
// repeat bit for bit), the others keep their rung's shard, status stopped;
// and so on to the top rung, the trial's full steps, whose trials end ok. A
// group down to one trial sends it straight to the top rung: it would be
// promoted at every rung between.
//
// The schedule is a function of the shards on disk: each round reads them,
// advances every group as far as the metrics they hold allow (halve), and
// runs what is missing. So a killed run resumes to the same outcome: the
// shards it left say which rungs were reached, and the rest is recomputed.
// A trial that fails at a rung (after its retries) holds its group at that
// rung, with an error; rerunning the sweep retries it.
//
// Every shard written by the schedule carries two extra metrics:
// steps_executed, the steps the schedule has trained the trial for, each
// rerun from step 0 counted again (runs lost to a kill or a failure are not
// counted: the figure is the schedule's, the same for a resumed run as for
// an uninterrupted one), and rung_step, the step its last run stopped at.

// rungKey carries a trial's rung run in its context.
type rungKey struct{}

// rungRun is one run of a trial to a rung.
type rungRun struct {
	stop int   // the step the run stops after (the trial's steps at the top rung)
	exec int64 // steps the schedule has run the trial for, this run included
}

// annotateRung records a rung run's steps_executed and rung_step in its
// shard; nothing for a trial that runs outside a schedule.
func annotateRung(ctx context.Context, s *results.Shard) {
	rr, ok := ctx.Value(rungKey{}).(*rungRun)
	if !ok {
		return
	}
	if s.Trial.Extra == nil {
		s.Trial.Extra = map[string]float64{}
	}
	s.Trial.Extra["steps_executed"] = float64(rr.exec)
	s.Trial.Extra["rung_step"] = float64(rr.stop)
}

func errNoEarlyStopping(kind string) error {
	return fmt.Errorf("runner: [early_stopping] is not supported by the %s executor yet: promotions are decided in the process that runs the trials; use the local executor", kind)
}

// ashaLevel is one rung a group reached and the members that run to it.
type ashaLevel struct {
	rung  int   // index into the group's rungs
	alive []int // members, in plan order
}

// ashaState is how far a group's schedule goes given the metrics known.
type ashaState struct {
	levels  []ashaLevel
	pending []int // members of the last level whose metric there is unknown
	done    bool  // the last level is the top rung and every metric is known
}

// halve advances the successive halving of a group of n members (in plan
// order) over rungs rungs as far as metric (a member's value at a rung
// index, and whether it is known) allows.
func halve(n, rungs, eta int, better func(a, b float64) bool, metric func(member, rung int) (float64, bool)) ashaState {
	var st ashaState
	alive := make([]int, n)
	for i := range alive {
		alive[i] = i
	}
	k := 0
	if n == 1 {
		k = rungs - 1
	}
	for {
		st.levels = append(st.levels, ashaLevel{k, alive})
		vals := make(map[int]float64, len(alive))
		for _, m := range alive {
			if v, ok := metric(m, k); ok {
				vals[m] = v
			} else {
				st.pending = append(st.pending, m)
			}
		}
		if len(st.pending) > 0 {
			return st
		}
		if k == rungs-1 {
			st.done = true
			return st
		}
		ranked := slices.Clone(alive)
		sort.SliceStable(ranked, func(i, j int) bool { return better(vals[ranked[i]], vals[ranked[j]]) })
		alive = ranked[:(len(ranked)+eta-1)/eta]
		slices.Sort(alive)
		if len(alive) == 1 {
			k = rungs - 1
		} else {
			k++
		}
	}
}

// executed is the steps the schedule has trained member m for, up to and
// including its run at level upTo.
func (st ashaState) executed(m int, rungs []int, upTo int) int64 {
	var n int64
	for _, l := range st.levels[:upTo+1] {
		if slices.Contains(l.alive, m) {
			n += int64(rungs[l.rung])
		}
	}
	return n
}

// last is the index of the last level member m runs at.
func (st ashaState) last(m int) int {
	for i := len(st.levels) - 1; i >= 0; i-- {
		if slices.Contains(st.levels[i].alive, m) {
			return i
		}
	}
	return 0
}

// ashaGroup is a group of competing trials and the rungs they share.
type ashaGroup struct {
	members []int // plan indices, in plan order
	rungs   []int // steps
}

func ashaGroups(es *sweeps.EarlyStopping, trials []sweeps.Trial) []ashaGroup {
	var groups []ashaGroup
	at := map[string]int{}
	for i, t := range trials {
		k := es.Group(t)
		g, ok := at[k]
		if !ok {
			g = len(groups)
			at[k] = g
			groups = append(groups, ashaGroup{rungs: es.Rungs(t)})
		}
		groups[g].members = append(groups[g].members, i)
	}
	return groups
}

// rungMetric is trial t's metric at step from its shard s: known when s
// holds a run that reached step (ok, or stopped at or after it) with the
// metric's step row, or diverged (NaN when it has no such row: it ranks
// last). missing says s reached step without the row: the trainer does not
// report the metric.
func rungMetric(es *sweeps.EarlyStopping, t sweeps.Trial, s *results.Shard, step int) (v float64, known, missing bool) {
	if s == nil {
		return 0, false, false
	}
	var reached int
	switch s.Trial.Status {
	case results.StatusOK:
		reached = t.Train.Steps
	case results.StatusStopped:
		reached = int(s.Trial.Steps)
		if r, ok := s.Trial.Extra["rung_step"]; ok {
			reached = int(r)
		}
	case results.StatusDiverged:
		reached = math.MaxInt
	default:
		return 0, false, false
	}
	if reached < step {
		return 0, false, false
	}
	for _, row := range s.Steps {
		if row.Step == int64(step) && row.Split == es.Split && row.Metric == es.Metric {
			return row.Value, true, false
		}
	}
	if s.Trial.Status == results.StatusDiverged {
		return math.NaN(), true, false
	}
	return 0, false, true
}

// asha runs the plan under [early_stopping] (see above) and returns the
// errors of the run: the runner's own, and the groups held at a rung.
func (r *run) asha(ctx context.Context, sum *Summary) []error {
	es := r.plan.EarlyStopping
	trials := r.plan.Trials
	groups := ashaGroups(es, trials)
	var errs []error
	tried := map[string]int{} // trial ID → 1 + the rung index it last ran to in this run
	held := map[int]bool{}    // groups held at a rung by a failure
	ran := map[string]bool{}
	for ctx.Err() == nil {
		shards, err := results.ReadShards(r.dir)
		if err != nil {
			return append(errs, fmt.Errorf("runner: %w", err))
		}
		var next []sweeps.Trial
		runs := map[string]*rungRun{}
		for gi, g := range groups {
			if held[gi] {
				continue
			}
			st := r.groupState(es, g, shards)
			if st.done {
				continue
			}
			lv := len(st.levels) - 1
			rung := st.levels[lv].rung
			for _, m := range st.pending {
				t := trials[g.members[m]]
				if tried[t.ID] == rung+1 { // ran to this rung in this run, still unknown
					held[gi] = true
					errs = append(errs, r.heldError(es, t, shards[t.ID], g.rungs[rung]))
					break
				}
			}
			if held[gi] {
				continue
			}
			for _, m := range st.pending {
				t := trials[g.members[m]]
				tried[t.ID] = rung + 1
				runs[t.ID] = &rungRun{stop: g.rungs[rung], exec: st.executed(m, g.rungs, lv)}
				next = append(next, t)
			}
		}
		if len(next) == 0 {
			break
		}
		slices.SortFunc(next, func(a, b sweeps.Trial) int { return a.Index - b.Index })
		for _, t := range next {
			ran[t.ID] = true
		}
		r.mu.Lock()
		r.progress.Total = r.progress.Done + r.progress.Running + len(next)
		r.mu.Unlock()
		e, halted := r.runTrials(ctx, next, func(ctx context.Context, t sweeps.Trial) context.Context {
			rr := runs[t.ID]
			if rr.stop < t.Train.Steps {
				ctx = trainer.WithStopAfter(ctx, rr.stop)
			}
			return context.WithValue(ctx, rungKey{}, rr)
		})
		errs = append(errs, e...)
		if halted {
			break
		}
	}
	sum.Skipped = len(trials) - len(ran)
	if ctx.Err() == nil {
		r.ashaSummary(es, groups, sum)
	}
	return errs
}

// groupState is group g's schedule given the shards.
func (r *run) groupState(es *sweeps.EarlyStopping, g ashaGroup, shards map[string]*results.Shard) ashaState {
	return halve(len(g.members), len(g.rungs), es.Eta, es.Better, func(m, k int) (float64, bool) {
		t := r.plan.Trials[g.members[m]]
		v, ok, _ := rungMetric(es, t, shards[t.ID], g.rungs[k])
		return v, ok
	})
}

// heldError says why trial t's group cannot pass the rung at step.
func (r *run) heldError(es *sweeps.EarlyStopping, t sweeps.Trial, s *results.Shard, step int) error {
	why := "no shard"
	if s != nil {
		why = s.Trial.Status
		if s.Trial.Error != "" {
			why += ": " + s.Trial.Error
		}
		if _, _, missing := rungMetric(es, t, s, step); missing {
			why = fmt.Sprintf("it reported no %s %s step metric at step %d (set [early_stopping] split and metric to one the trainer reports)", es.Split, es.Metric, step)
		}
	}
	return fmt.Errorf("runner: early stopping: trial %s (%s) holds its group at the rung of step %d: %s; rerun to resume",
		t.ID, ref(t), step, why)
}

// ashaSummary fills the summary's step counts from the final shards and
// logs the schedule's outcome.
func (r *run) ashaSummary(es *sweeps.EarlyStopping, groups []ashaGroup, sum *Summary) {
	shards, err := results.ReadShards(r.dir)
	if err != nil {
		return
	}
	top, stopped := 0, 0
	for _, g := range groups {
		st := r.groupState(es, g, shards)
		for m, i := range g.members {
			sum.FullSteps += int64(r.plan.Trials[i].Train.Steps)
			l := st.last(m)
			sum.StepsExecuted += st.executed(m, g.rungs, l)
			if st.done && st.levels[l].rung == len(g.rungs)-1 {
				top++
			} else if st.done {
				stopped++
			}
		}
	}
	if r.opts.Log != nil && sum.FullSteps > 0 {
		fmt.Fprintf(r.opts.Log, "early stopping (eta %d, %s %s %s): %d groups; %d trials run to the end, %d stopped; %d steps executed, %.1f%% of the %d of full runs\n",
			es.Eta, es.Direction, es.Split, es.Metric, len(groups), top, stopped, sum.StepsExecuted,
			100*float64(sum.StepsExecuted)/float64(sum.FullSteps), sum.FullSteps)
	}
}
