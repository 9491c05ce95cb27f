package runner

import (
	"testing"
	"time"

	"peftbench/sweeps"
)

// TestETA checks the estimator against hand-computed times left: rates in
// seconds per step by (task, method), else by task, counted from the base
// model being ready; trials left × rate / workers, at least the longest
// running trial's time left; unknown until a trial of every task left
// ended ok.
func TestETA(t *testing.T) {
	tr := func(id, task, method string, steps int) sweeps.Trial {
		return sweeps.Trial{ID: id, Task: task, Method: method, Train: sweeps.TrainConfig{Steps: steps}}
	}
	t1, t2, t3, t4 := tr("t1", "A", "lora", 100), tr("t2", "A", "lora", 100), tr("t3", "A", "full", 200), tr("t4", "B", "lora", 100)
	e := func(typ string, s float64, t sweeps.Trial) Event {
		return Event{Type: typ, Time: t0.Add(time.Duration(s * float64(time.Second))), Trial: ref(t)}
	}
	phase := func(s float64, t sweeps.Trial, p string) Event {
		ev := e(EventTrialPhase, s, t)
		ev.Phase = p
		return ev
	}
	end := func(s float64, t sweeps.Trial, status string, wall float64) Event {
		ev := e(EventTrialFinished, s, t)
		ev.Status, ev.Seconds = status, wall
		return ev
	}
	// t1 pretrains the base (10 s), then trains 100 steps in 20 s: 0.2 s/step.
	t1ok := []Event{e(EventTrialStarted, 0, t1), phase(0, t1, "base"), phase(10, t1, "train"), end(30, t1, "ok", 30)}
	const unknown = -1
	for _, c := range []struct {
		name    string
		left    []sweeps.Trial
		workers int
		events  []Event
		now     float64
		want    float64 // seconds; unknown
	}{
		{"nothing ended", []sweeps.Trial{t1, t2}, 2, []Event{e(EventTrialStarted, 0, t1)}, 5, unknown},
		{"a task without an ok trial", []sweeps.Trial{t1, t2, t4}, 2, t1ok, 30, unknown},
		// t2: 100 × 0.2 = 20; t3 (no full trial ended: the task's rate) 200 × 0.2 = 40; (20+40)/2.
		{"by task when the method has none", []sweeps.Trial{t1, t2, t3}, 2, t1ok, 30, 30},
		// t3 ran 200 steps in 100 s (no phase: from its start): full 0.5 s/step;
		// t2 at lora's 0.2: 20 s on 2 workers.
		{"by task and method", []sweeps.Trial{t1, t2, t3}, 2,
			append(append([]Event{e(EventTrialStarted, 0, t3)}, t1ok...), end(100, t3, "ok", 100)), 100, 10},
		// t2 trains since 30: 20 − 5 = 15 left; t3 waits: 200 × 0.2 = 40; (15+40)/2.
		{"a running trial's time left", []sweeps.Trial{t1, t2, t3}, 2,
			append(t1ok, e(EventTrialStarted, 30, t2)), 35, 27.5},
		// Only t2 left, running: 20 − 1 = 19, more than 19/2.
		{"the longest running trial", []sweeps.Trial{t1, t2}, 2,
			append(t1ok, e(EventTrialStarted, 30, t2)), 31, 19},
		// t2 waited for its base from 30 to 40: its training began at 40.
		{"waiting for the base is not training", []sweeps.Trial{t1, t2}, 1,
			append(t1ok, e(EventTrialStarted, 30, t2), phase(30, t2, "base"), phase(40, t2, "train")), 45, 15},
		{"an overrun trial", []sweeps.Trial{t1, t2}, 2,
			append(t1ok, e(EventTrialStarted, 30, t2)), 100, 0},
		{"a failure teaches nothing", []sweeps.Trial{t1, t2}, 2,
			[]Event{e(EventTrialStarted, 0, t1), end(3, t1, "failed", 3)}, 3, unknown},
		// A Slurm trial seen only ending: its wall time, 25 s: 0.25 s/step; t2 25/2.
		{"an end without a start", []sweeps.Trial{t1, t2}, 2, []Event{end(30, t1, "ok", 25)}, 30, 12.5},
		{"one worker", []sweeps.Trial{t1, t2, t3}, 1, t1ok, 30, 60},
	} {
		t.Run(c.name, func(t *testing.T) {
			est := newETA(c.left, c.workers)
			for _, ev := range c.events {
				est.observe(ev)
			}
			d, ok := est.estimate(t0.Add(time.Duration(c.now * float64(time.Second))))
			switch {
			case c.want == unknown && ok:
				t.Errorf("ETA %s, want unknown", d)
			case c.want != unknown && !ok:
				t.Errorf("ETA unknown, want %gs", c.want)
			case c.want != unknown && d != time.Duration(c.want*float64(time.Second)):
				t.Errorf("ETA %s, want %gs", d, c.want)
			}
		})
	}
}
