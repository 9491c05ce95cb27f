package runner

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"peftbench/sweeps"
	"peftbench/trainer"
)

// TestProgressEvents: a run's JSON events label trials by the settings the
// sweep varies (two trials apart only in lr get different labels), carry
// the trainer's phases and its step metrics (train loss and evaluations,
// not the train split's diagnostics), and an ETA once a trial ended ok.
func TestProgressEvents(t *testing.T) {
	plan := testPlan("progress", 2)
	for i := range plan.Trials {
		plan.Trials[i].Method, plan.Trials[i].Rank, plan.Trials[i].Seed = "lora", 4, 0
		plan.Trials[i].MethodOptions = map[string]any{"alpha": 8.0}
	}
	plan.Trials[1].Train.LR = 3e-3
	var b strings.Builder
	opts := testOptions(t, trainerFunc(func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
		trainer.ReportPhase(r, trainer.PhaseBase)
		trainer.ReportPhase(r, trainer.PhaseTrain)
		for step := 1; step <= t.Train.Steps; step++ {
			r.Step(step, "train", "loss", toyLoss(t, step))
			r.Step(step, "train", "grad_norm", 1)
		}
		r.Step(t.Train.Steps, "target", "accuracy", 0.5)
		toySummary(t, r)
		return nil
	}))
	opts.Workers = 1
	opts.Events = NewJSON(&b)
	if _, err := Run(context.Background(), plan, opts); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	count := map[string]int{}
	var lastETA *float64
	for line := range strings.Lines(b.String()) {
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		count[ev.Type]++
		if ev.Trial != nil {
			labels[ev.Trial.ID] = ev.Trial.Label
		}
		switch ev.Type {
		case EventTrialStep:
			m := ev.Metric
			if ev.Trial == nil || m == nil || m.Step < 1 || m.Split == "" || m.Metric == "" {
				t.Errorf("step event without trial, step, split or metric: %s", line)
			} else if m.Split == "train" && m.Metric != "loss" {
				t.Errorf("step event of a train diagnostic: %s", line)
			} else if ev.ETA != nil {
				t.Errorf("step event with an ETA: %s", line)
			}
		case EventTrialFinished:
			lastETA = ev.ETA
		}
	}
	// 5 train losses and 1 accuracy per trial; 2 phases per trial.
	if count[EventTrialStep] != 12 || count[EventTrialPhase] != 4 {
		t.Errorf("%d step and %d phase events, want 12 and 4:\n%s", count[EventTrialStep], count[EventTrialPhase], b.String())
	}
	a, c := labels[plan.Trials[0].ID], labels[plan.Trials[1].ID]
	if a != "lora r=4 toy lr=1e-3 seed=0" || c != "lora r=4 toy lr=3e-3 seed=0" {
		t.Errorf("labels %q and %q, want them apart by lr", a, c)
	}
	if lastETA == nil || *lastETA != 0 {
		t.Errorf("last trial_finished ETA = %v, want 0 (nothing left)", lastETA)
	}
}
