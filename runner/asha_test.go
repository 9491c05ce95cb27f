package runner

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"peftbench/results"
	"peftbench/sweeps"
	"peftbench/trainer"
)

// TestHalve checks promotions against rungs computed by hand: metric[m][k]
// is member m's value at rung k (NaN: diverged; -1: not known yet).
func TestHalve(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name    string
		eta     int
		min     bool // direction "min"
		metric  [][]float64
		levels  [][]int // members running to each level's rung
		rungs   []int   // the rung index of each level
		pending []int
		done    bool
	}{{
		// 9 members, eta 3, rungs 0..2: the best 3 of rung 0 (members 2, 7,
		// 4), the best of those at rung 1 (7, which overtakes 2) goes on.
		name: "nine eta3",
		eta:  3,
		metric: [][]float64{
			{.10, -1, -1}, {.20, -1, -1}, {.90, .91, -1}, {.30, -1, -1}, {.70, .80, -1},
			{.40, -1, -1}, {.50, -1, -1}, {.80, .95, .97}, {.60, -1, -1},
		},
		levels: [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8}, {2, 4, 7}, {7}},
		rungs:  []int{0, 1, 2},
		done:   true,
	}, {
		// Ties go to the lower plan index; 5 members, eta 2: ⌈5/2⌉ = 3
		// promoted, then ⌈3/2⌉ = 2 at the top.
		name: "ties eta2",
		eta:  2,
		metric: [][]float64{
			{.5, .6, .8}, {.5, .7, .9}, {.5, .1, -1}, {.4, -1, -1}, {.5, -1, -1},
		},
		levels: [][]int{{0, 1, 2, 3, 4}, {0, 1, 2}, {0, 1}},
		rungs:  []int{0, 1, 2},
		done:   true,
	}, {
		// Minimising a loss; a diverged member (NaN) ranks last even
		// against worse losses.
		name: "min with nan",
		eta:  2,
		min:  true,
		metric: [][]float64{
			{nan, -1, -1}, {3.0, -1, -1}, {1.0, 1.5, 1.2}, {2.0, 1.8, -1},
		},
		levels: [][]int{{0, 1, 2, 3}, {2, 3}, {2}},
		rungs:  []int{0, 1, 2},
		done:   true,
	}, {
		// Rung 1 is not complete: the group waits there for member 4.
		name: "waits",
		eta:  3,
		metric: [][]float64{
			{.1, -1, -1}, {.2, -1, -1}, {.9, .5, -1}, {.3, -1, -1}, {.8, -1, -1},
		},
		levels:  [][]int{{0, 1, 2, 3, 4}, {2, 4}},
		rungs:   []int{0, 1},
		pending: []int{4},
	}, {
		// A lone member goes straight to the top rung.
		name:    "alone",
		eta:     3,
		metric:  [][]float64{{-1, -1, -1, -1}},
		levels:  [][]int{{0}},
		rungs:   []int{3},
		pending: []int{0},
	}, {
		// Nothing known: every member runs to rung 0.
		name:    "start",
		eta:     3,
		metric:  [][]float64{{-1, -1}, {-1, -1}},
		levels:  [][]int{{0, 1}},
		rungs:   []int{0},
		pending: []int{0, 1},
	}} {
		t.Run(c.name, func(t *testing.T) {
			es := sweeps.EarlyStopping{Direction: "max"}
			if c.min {
				es.Direction = "min"
			}
			st := halve(len(c.metric), len(c.metric[0]), c.eta, es.Better, func(m, k int) (float64, bool) {
				v := c.metric[m][k]
				return v, v != -1
			})
			var levels [][]int
			var rungs []int
			for _, l := range st.levels {
				levels = append(levels, l.alive)
				rungs = append(rungs, l.rung)
			}
			if fmt.Sprint(levels) != fmt.Sprint(c.levels) || !slices.Equal(rungs, c.rungs) {
				t.Errorf("levels %v at rungs %v, want %v at %v", levels, rungs, c.levels, c.rungs)
			}
			if !slices.Equal(st.pending, c.pending) || st.done != c.done {
				t.Errorf("pending %v done %v, want %v %v", st.pending, st.done, c.pending, c.done)
			}
		})
	}
}

// curve is a toy validation accuracy at step for learning rate lr: it
// rises faster the larger lr, towards a ceiling that peaks at lr = 1e-2.
func curve(lr float64, step int) float64 {
	l := math.Log10(lr)
	ceiling := 0.95 - 0.08*(l+2)*(l+2)
	return ceiling * (1 - math.Exp(-float64(step)*lr*3))
}

// stopToy trains like toy, evaluating val accuracy (curve) every
// eval_every steps, and honours trainer.StopAfter. runs counts its runs
// and steps the steps it trained.
type stopToy struct {
	runs, steps atomic.Int64
	honour      bool
}

func (s *stopToy) Run(ctx context.Context, t sweeps.Trial, _ string, r Reporter) error {
	s.runs.Add(1)
	stop := trainer.StopAfter(ctx)
	if !s.honour {
		stop = 0
	}
	for step := 1; step <= t.Train.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.steps.Add(1)
		r.Step(step, "train", "loss", 1/float64(step))
		if step%t.Train.EvalEvery == 0 || step == t.Train.Steps || step == stop {
			r.Step(step, "val", "accuracy", curve(t.Train.LR, step))
		}
		if step == stop {
			r.Summary("val_metric", curve(t.Train.LR, step))
			return &trainer.StoppedError{Step: stop}
		}
	}
	r.Summary("val_metric", curve(t.Train.LR, t.Train.Steps))
	return nil
}

// ashaPlan is n trials of one group differing in lr, under eta 3 with
// rungs 10, 30, 90.
func ashaPlan(name string, lrs []float64) *sweeps.Plan {
	p := &sweeps.Plan{Name: name, File: name + ".toml", Source: name, SourceHash: "hash-" + name,
		EarlyStopping: &sweeps.EarlyStopping{Kind: "asha", Eta: 3, MinSteps: 10, Split: "val", Metric: "accuracy", Direction: "max"}}
	for i, lr := range lrs {
		p.Trials = append(p.Trials, sweeps.Trial{
			Sweep: name, ID: fmt.Sprintf("%016x", uint64(i+1)*0x9e3779b97f4a7c15), Index: i,
			Method: "lora", Rank: 4, Task: "toy", MethodOptions: map[string]any{},
			Train: sweeps.TrainConfig{Steps: 90, EvalEvery: 10, Batch: 8, LR: lr, Optimizer: "adamw", Schedule: "constant"},
		})
	}
	return p
}

// TestASHARun runs nine trials through rungs 10, 30, 90 with eta 3 and
// checks statuses, rung steps, runs, steps_executed and the summary's step
// counts against the schedule computed by hand from curve: at step 10 the
// three largest learning rates lead (0.827, 0.553, 0.246); at 30, of those,
// 1e-1 leads 3e-2 (0.8699 and 0.8690; 1e-2 0.564) and runs to the end.
func TestASHARun(t *testing.T) {
	lrs := []float64{1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 3e-2, 1e-1}
	for _, honour := range []bool{true, false} {
		t.Run(fmt.Sprintf("honours-stop=%v", honour), func(t *testing.T) {
			toy := &stopToy{honour: honour}
			opts := testOptions(t, toy)
			var log strings.Builder
			opts.Log = &log
			sum, err := Run(context.Background(), ashaPlan("asha", lrs), opts)
			if err != nil {
				t.Fatal(err)
			}
			want := map[float64][3]any{ // status, rung_step, steps_executed
				1e-2: {results.StatusStopped, 30, 40}, 3e-2: {results.StatusStopped, 30, 40}, 1e-1: {results.StatusOK, 90, 130},
			}
			got := shards(t, sum.Dir)
			for _, tr := range ashaPlan("asha", lrs).Trials {
				s := got[tr.ID]
				w, ok := want[tr.Train.LR]
				if !ok {
					w = [3]any{results.StatusStopped, 10, 10}
				}
				if s.Trial.Status != w[0] || s.Trial.Extra["rung_step"] != float64(w[1].(int)) || s.Trial.Extra["steps_executed"] != float64(w[2].(int)) {
					t.Errorf("lr %v: %s at rung %v, %v steps executed; want %v", tr.Train.LR, s.Trial.Status,
						s.Trial.Extra["rung_step"], s.Trial.Extra["steps_executed"], w)
				}
				if last := s.Steps[len(s.Steps)-1].Step; last != int64(w[1].(int)) {
					t.Errorf("lr %v: last step row at %d, want %d", tr.Train.LR, last, w[1])
				}
			}
			if sum.StepsExecuted != 6*10+2*40+130 || sum.FullSteps != 9*90 {
				t.Errorf("steps executed %d of %d, want 270 of 810", sum.StepsExecuted, sum.FullSteps)
			}
			if toy.runs.Load() != 9+3+1 {
				t.Errorf("%d trainer runs, want 13", toy.runs.Load())
			}
			if honour && toy.steps.Load() != 270 {
				t.Errorf("the trainer trained %d steps, want 270", toy.steps.Load())
			}
			if sum.Counts[results.StatusStopped] != 8 || sum.Counts[results.StatusOK] != 1 {
				t.Errorf("counts %v, want 8 stopped, 1 ok", sum.Counts)
			}
			if !strings.Contains(log.String(), "270 steps executed, 33.3% of the 810") {
				t.Errorf("log %q", log.String())
			}
			// Rerun: nothing left to do.
			before := toy.runs.Load()
			if _, err := Run(context.Background(), ashaPlan("asha", lrs), opts); err != nil || toy.runs.Load() != before {
				t.Errorf("rerun of a finished schedule: %v, %d more runs", err, toy.runs.Load()-before)
			}
		})
	}
}

// TestASHAResume interrupts the schedule at every trainer run in turn
// (cancelling the sweep as that run starts) and resumes it: the shards end
// as in an uninterrupted run, whatever was cancelled when.
func TestASHAResume(t *testing.T) {
	lrs := []float64{1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 3e-2, 1e-1}
	ref := &stopToy{honour: true}
	refOpts := testOptions(t, ref)
	sum, err := Run(context.Background(), ashaPlan("asha", lrs), refOpts)
	if err != nil {
		t.Fatal(err)
	}
	want := shardDigest(shards(t, sum.Dir))
	total := int(ref.runs.Load())
	for cut := 1; cut <= total; cut++ {
		toy := &stopToy{honour: true}
		ctx, cancel := context.WithCancel(context.Background())
		var n atomic.Int64
		opts := testOptions(t, trainerFunc(func(c context.Context, tr sweeps.Trial, dir string, r Reporter) error {
			if n.Add(1) == int64(cut) {
				cancel()
			}
			return toy.Run(c, tr, dir, r)
		}))
		opts.Workers = 1 + cut%3
		_, err := Run(ctx, ashaPlan("asha", lrs), opts)
		if err == nil {
			t.Fatalf("cut %d: the interrupted run returned no error", cut)
		}
		opts.Trainer = toy
		sum, err := Run(context.Background(), ashaPlan("asha", lrs), opts)
		if err != nil {
			t.Fatalf("cut %d: resume: %v", cut, err)
		}
		if got := shardDigest(shards(t, sum.Dir)); got != want {
			t.Errorf("cut %d: resumed shards differ:\n%s\nwant:\n%s", cut, got, want)
		}
		if sum.StepsExecuted != 270 {
			t.Errorf("cut %d: %d steps executed, want 270", cut, sum.StepsExecuted)
		}
	}
}

// shardDigest is what must not depend on how a schedule ran: each trial's
// status, extra metrics and step rows.
func shardDigest(ss map[string]*results.Shard) string {
	var b strings.Builder
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range ss {
			if !yield(id) {
				return
			}
		}
	}) {
		s := ss[id]
		fmt.Fprintf(&b, "%s %s %v %d rows", id, s.Trial.Status, s.Trial.Extra, len(s.Steps))
		for _, r := range s.Steps {
			fmt.Fprintf(&b, " %d/%s/%s=%v", r.Step, r.Split, r.Metric, r.Value)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestASHAHeld: a trainer that does not report the metric holds the group
// at rung 0 with an error naming it, instead of promoting at random.
func TestASHAHeld(t *testing.T) {
	plan := ashaPlan("held", []float64{1e-3, 1e-2, 1e-1})
	plan.EarlyStopping.Metric = "f1"
	toy := &stopToy{honour: true}
	_, err := Run(context.Background(), plan, testOptions(t, toy))
	if err == nil || !strings.Contains(err.Error(), "reported no val f1 step metric at step 10") {
		t.Errorf("err = %v, want the missing metric named", err)
	}
	if toy.runs.Load() != 3 {
		t.Errorf("%d runs, want 3 (rung 0 once each)", toy.runs.Load())
	}
}

// TestASHASlurmRefused: the Slurm executor refuses [early_stopping] before
// submitting anything.
func TestASHASlurmRefused(t *testing.T) {
	e, err := LookupExecutor("slurm")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Run(context.Background(), ashaPlan("slurm", []float64{1e-3}), testOptions(t, &stopToy{}))
	if err == nil || !strings.Contains(err.Error(), "[early_stopping] is not supported by the slurm executor") {
		t.Errorf("err = %v", err)
	}
}
