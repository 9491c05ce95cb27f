package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// TestCancelDuringAfterTrial interrupts a sweep while a trial's after-trial
// analysis runs (the hook blocks until its context ends, as a long SVD
// would): that trial is recorded cancelled, not failed, and keeps its
// training metrics; the trial that finished before keeps its ok shard; a
// rerun resumes the cancelled trial.
func TestCancelDuringAfterTrial(t *testing.T) {
	for _, wrapped := range []bool{false, true} {
		t.Run(fmt.Sprintf("wrapped=%v", wrapped), func(t *testing.T) {
			plan := testPlan("cancel-analysis", 3)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := testOptions(t, trainerFunc(toy))
			opts.Workers = 1
			opts.AfterTrial = func(actx context.Context, tr sweeps.Trial, _ string, _ map[string]string, s *results.Shard) error {
				if tr.Index != 1 {
					s.Trial.EffectiveRank = 1
					return nil
				}
				cancel() // Ctrl-C while the analysis of trial 1 runs
				select {
				case <-actx.Done():
				case <-time.After(10 * time.Second):
					return errors.New("after-trial context not cancelled")
				}
				if wrapped {
					return fmt.Errorf("spectra of weights.safetensors: %w", actx.Err())
				}
				return actx.Err()
			}
			sum, err := Run(ctx, plan, opts)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			got := shards(t, sum.Dir)
			if len(got) != 2 {
				t.Fatalf("%d shards, want 2 (trial 0 ok, trial 1 cancelled)", len(got))
			}
			if s := got[plan.Trials[0].ID]; s.Trial.Status != results.StatusOK || s.Trial.EffectiveRank != 1 {
				t.Errorf("trial 0 = %s (effective rank %v), want ok with its analysis", s.Trial.Status, s.Trial.EffectiveRank)
			}
			s := got[plan.Trials[1].ID]
			if s.Trial.Status != results.StatusCancelled {
				t.Errorf("trial 1 = %s %q, want %s", s.Trial.Status, s.Trial.Error, results.StatusCancelled)
			}
			if !strings.Contains(s.Trial.Error, "context canceled") || len(s.Steps) != 5 {
				t.Errorf("trial 1: error %q, %d step rows; want the cancellation and the 5 trained steps", s.Trial.Error, len(s.Steps))
			}
			if sum.Counts[results.StatusFailed] != 0 || sum.Counts[results.StatusCancelled] != 1 {
				t.Errorf("counts = %v, want 1 cancelled and none failed", sum.Counts)
			}
			if !strings.Contains(err.Error(), "1 cancelled") {
				t.Errorf("err = %v, want it to count the cancelled trial", err)
			}

			opts.AfterTrial = nil
			sum, err = Run(context.Background(), plan, opts)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Skipped != 1 || sum.Counts[results.StatusOK] != 3 {
				t.Errorf("resume: skipped %d, counts %v; want trial 0 skipped and all 3 ok", sum.Skipped, sum.Counts)
			}
		})
	}
}

// TestAfterTrialCanceledError: an after-trial step that reports a
// context.Canceled of its own, the run's context still live, records the
// trial cancelled too (never failed with "context canceled"); other errors
// still fail it.
func TestAfterTrialCanceledError(t *testing.T) {
	plan := testPlan("analysis-errors", 2)
	opts := testOptions(t, trainerFunc(toy))
	opts.AfterTrial = func(_ context.Context, tr sweeps.Trial, _ string, _ map[string]string, _ *results.Shard) error {
		if tr.Index == 0 {
			return fmt.Errorf("spectra: %w", context.Canceled)
		}
		return errors.New("bad weights")
	}
	sum, err := Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := shards(t, sum.Dir)
	if s := got[plan.Trials[0].ID].Trial; s.Status != results.StatusCancelled {
		t.Errorf("trial 0 = %s %q, want cancelled", s.Status, s.Error)
	}
	if s := got[plan.Trials[1].ID].Trial; s.Status != results.StatusFailed || !strings.Contains(s.Error, "after trial: bad weights") {
		t.Errorf("trial 1 = %s %q, want failed with the analysis error", s.Status, s.Error)
	}
}

// TestTrainerCanceledError: a trainer that returns a context.Canceled of its
// own while the run goes on is recorded cancelled, not failed, and is not
// retried.
func TestTrainerCanceledError(t *testing.T) {
	plan := testPlan("trainer-canceled", 2)
	plan.Resources.Retries = 2
	var c counter
	opts := testOptions(t, c.wrap(func(ctx context.Context, tr sweeps.Trial, dir string, r Reporter) error {
		if tr.Index == 0 {
			return fmt.Errorf("data loader: %w", context.Canceled)
		}
		return toy(ctx, tr, dir, r)
	}))
	sum, err := Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s := shards(t, sum.Dir)[plan.Trials[0].ID].Trial; s.Status != results.StatusCancelled || s.Attempts != 1 {
		t.Errorf("trial 0 = %s %q after %d attempts, want cancelled after 1", s.Status, s.Error, s.Attempts)
	}
	if n := c.get(plan.Trials[0].ID); n != 1 {
		t.Errorf("trainer ran %d times, want 1", n)
	}
}
