package train_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"

	"peftbench/tasks"
	"peftbench/train"
	"peftbench/trainer"
)

// rowRecorder keeps every step row in order, and the summaries.
type rowRecorder struct {
	mu        sync.Mutex
	rows      []stepRow
	summary   map[string]float64
	artifacts []string
}

type stepRow struct {
	step          int
	split, metric string
	v             float64
}

func (r *rowRecorder) Step(step int, split, metric string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, stepRow{step, split, metric, v})
}

func (r *rowRecorder) Summary(name string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.summary == nil {
		r.summary = map[string]float64{}
	}
	r.summary[name] = v
}

func (r *rowRecorder) Artifact(name, _ string) { r.artifacts = append(r.artifacts, name) }
func (r *rowRecorder) Log(string)              {}

func runRows(t *testing.T, ctx context.Context, cfg train.Config) (*rowRecorder, error) {
	t.Helper()
	rec := &rowRecorder{}
	err := (&train.Trainer{Cache: cache}).Run(ctx, cfg, t.TempDir(), rec)
	return rec, err
}

// TestStopAfter runs trials to the end and again under
// trainer.WithStopAfter(n): a stopped run returns a *trainer.StoppedError
// for step n, its step rows are bit for bit the full run's up to step n
// (train rows of steps 0…n−1, evaluation rows at steps ≤ n), plus an
// evaluation at n (val, target, retain) where the full run had none, and
// its summaries are that evaluation's. Dropout makes the data and dropout
// streams both matter; the continual cases stop at a stage's end (after
// its stage rows) and inside a later stage, after a merge.
func TestStopAfter(t *testing.T) {
	single := teacherShift("lora", map[string]any{"rank": 4, "dropout": 0.1})
	single.EvalEvery = 10
	staged := single
	opts, err := tasks.ResolveOptions("teacher-shift", map[string]any{"pretrain_steps": 300, "eval_size": 512, "stages": 3, "merge": true})
	if err != nil {
		t.Fatal(err)
	}
	staged.TaskOptions, staged.Steps = opts, 20
	for _, tc := range []struct {
		name string
		cfg  train.Config
		n    int
		// full: n is the last step, so the run is complete.
		full bool
	}{
		{"at an eval point", single, 20, false},
		{"between eval points", single, 15, false},
		{"after the first step", single, 1, false},
		{"at the last step", single, 40, true},
		{"at a stage's end", staged, 20, false},
		{"inside a later stage", staged, 33, false},
		{"at the last stage's end", staged, 60, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full, err := runRows(t, context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := runRows(t, trainer.WithStopAfter(context.Background(), tc.n), tc.cfg)
			if tc.full {
				if err != nil {
					t.Fatalf("stop at the last step %d: %v, want a complete run", tc.n, err)
				}
				if !sameRows(got.rows, full.rows) {
					t.Errorf("stop at the last step: rows differ from the full run's")
				}
				if _, ok := got.summary["forgetting"]; !ok {
					t.Errorf("stop at the last step: no forgetting in the summary")
				}
				return
			}
			var se *trainer.StoppedError
			if !errors.As(err, &se) || se.Step != tc.n {
				t.Fatalf("err = %v, want a *trainer.StoppedError for step %d", err, tc.n)
			}
			var want []stepRow
			for _, r := range full.rows {
				if r.step < tc.n || r.step == tc.n && r.split != "train" {
					want = append(want, r)
				}
			}
			if len(got.rows) < len(want) || !sameRows(got.rows[:len(want)], want) {
				t.Fatalf("the stopped run's rows are not the full run's first %d steps:\n got %v\nwant %v", tc.n, got.rows, want)
			}
			// The evaluation at n: the full run's, or one of its own.
			at := map[string]float64{}
			for _, r := range got.rows {
				if r.step == tc.n && r.split != "train" && r.split != "stage" {
					at[r.split+"/"+r.metric] = r.v
				}
			}
			extra := got.rows[len(want):]
			if len(extra) != 0 && len(extra) != 6 {
				t.Errorf("%d rows after the full run's: %v", len(extra), extra)
			}
			for _, r := range extra {
				if r.step != tc.n || r.split == "train" || r.split == "stage" {
					t.Errorf("row %v after the full run's first %d steps", r, tc.n)
				}
			}
			for name, key := range map[string]string{
				"val_loss": "val/loss", "val_metric": "val/accuracy",
				"target_loss": "target/loss", "target_metric": "target/accuracy",
				"retain_loss_after": "retain/loss", "retain_metric_after": "retain/accuracy",
			} {
				v, ok := at[key]
				if !ok {
					t.Errorf("no %s row at step %d", key, tc.n)
				} else if s, ok := got.summary[name]; !ok || math.Float64bits(s) != math.Float64bits(v) {
					t.Errorf("summary %s = %v, want the step-%d %s %v", name, s, tc.n, key, v)
				}
			}
			if got.summary["steps"] != float64(tc.n) {
				t.Errorf("steps = %v, want %d", got.summary["steps"], tc.n)
			}
			for _, k := range []string{"forgetting", "target_metric_before", "peak_mem_bytes"} {
				if _, ok := got.summary[k]; ok {
					t.Errorf("a stopped trial reported %s: the after-training work ran", k)
				}
			}
			if len(got.artifacts) > 0 {
				t.Errorf("a stopped trial wrote artifacts %v", got.artifacts)
			}
		})
	}
}

func sameRows(a, b []stepRow) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].step != b[i].step || a[i].split != b[i].split || a[i].metric != b[i].metric ||
			math.Float64bits(a[i].v) != math.Float64bits(b[i].v) {
			return false
		}
	}
	return true
}

// TestValidationReported: every evaluation point reports val loss and
// accuracy (eval_every 10 of 40 steps: steps 10, 20, 30 and 40), and the
// summary's val_loss and val_metric are the final model's, equal to the
// last val rows (no mitigation), and differ from the target's (another
// set). On a continual task they are the last stage's.
func TestValidationReported(t *testing.T) {
	single := teacherShift("lora", map[string]any{"rank": 4})
	single.EvalEvery = 10
	staged := single
	opts, err := tasks.ResolveOptions("teacher-shift", map[string]any{"pretrain_steps": 300, "eval_size": 512, "stages": 2})
	if err != nil {
		t.Fatal(err)
	}
	staged.TaskOptions, staged.Steps = opts, 20
	for _, tc := range []struct {
		name  string
		cfg   train.Config
		steps []int
	}{
		{"single", single, []int{10, 20, 30, 40}},
		{"staged", staged, []int{10, 20, 30, 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := runRows(t, context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var steps []int
			last := map[string]float64{}
			for _, r := range rec.rows {
				if r.split == "val" {
					last[r.metric] = r.v
					if r.metric == "accuracy" {
						steps = append(steps, r.step)
					}
				}
			}
			if !slices.Equal(steps, tc.steps) {
				t.Errorf("val rows at steps %v, want %v", steps, tc.steps)
			}
			for name, m := range map[string]string{"val_loss": "loss", "val_metric": "accuracy"} {
				v, ok := rec.summary[name]
				if !ok || math.Float64bits(v) != math.Float64bits(last[m]) {
					t.Errorf("summary %s = %v (reported %v), want the last val %s row %v", name, v, ok, m, last[m])
				}
			}
			if rec.summary["val_loss"] == rec.summary["target_loss"] {
				t.Errorf("val_loss = target_loss = %v: the same set?", rec.summary["val_loss"])
			}
		})
	}
}
