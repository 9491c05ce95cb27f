package runner

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// TestAfterTrialUnderDeadline: the after-trial analysis runs under the
// trial's deadline. A hook that blocks until its context ends makes the
// trial timeout (not failed, not a hang), with its trained metrics kept;
// so does one that ignores its context, abandoned after the grace period.
func TestAfterTrialUnderDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		hook func(ctx context.Context) error
	}{
		{"hook honours its context", func(ctx context.Context) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Second):
				return errors.New("after-trial context had no deadline")
			}
		}},
		{"hook ignores its context", func(ctx context.Context) error {
			time.Sleep(8 * time.Second) // a long SVD that never looks at ctx
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan := testPlan("after-deadline", 1)
			plan.Resources.Timeout = 300 * time.Millisecond
			opts := testOptions(t, trainerFunc(toy))
			opts.Grace = 200 * time.Millisecond
			opts.AfterTrial = func(ctx context.Context, _ sweeps.Trial, _ string, _ map[string]string, s *results.Shard) error {
				s.Trial.EffectiveRank = 7 // dropped: the analysis did not finish
				return tc.hook(ctx)
			}
			start := time.Now()
			sum, err := Run(context.Background(), plan, opts)
			if err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el > 4*time.Second {
				t.Errorf("took %v: the analysis outlived the trial's 300ms deadline", el)
			}
			s := shards(t, sum.Dir)[plan.Trials[0].ID]
			if s.Trial.Status != results.StatusTimeout || !strings.Contains(s.Trial.Error, "timed out after 300ms") {
				t.Fatalf("status %s %q, want timeout after 300ms", s.Trial.Status, s.Trial.Error)
			}
			if len(s.Steps) != 5 || s.Trial.TargetLoss != toyLoss(plan.Trials[0], 5) {
				t.Errorf("%d step rows, target_loss %v: want the 5 trained steps and the summary kept", len(s.Steps), s.Trial.TargetLoss)
			}
			if s.Trial.EffectiveRank == 7 {
				t.Errorf("the unfinished analysis wrote into the shard")
			}
		})
	}
}

// TestDefaultTimeout: a trial of a sweep that sets no timeout runs under
// the default deadline, which scales with its steps.
func TestDefaultTimeout(t *testing.T) {
	plan := testPlan("default-timeout", 2)
	plan.Trials[1].Train.Steps = 5000
	left := map[int]time.Duration{}
	opts := testOptions(t, trainerFunc(func(ctx context.Context, tr sweeps.Trial, dir string, r Reporter) error {
		if d, ok := ctx.Deadline(); ok {
			left[tr.Index] = time.Until(d)
		}
		return toy(ctx, tr, dir, r)
	}))
	opts.Workers = 1
	if _, err := Run(context.Background(), plan, opts); err != nil {
		t.Fatal(err)
	}
	for i, tr := range plan.Trials {
		want := sweeps.DefaultTimeout(tr)
		if got := left[i]; got <= want-time.Minute || got > want {
			t.Errorf("trial %d (%d steps): deadline in %v, want about %v", i, tr.Train.Steps, got, want)
		}
	}
	if left[1] <= left[0] {
		t.Errorf("deadlines %v: the longer trial should have the later one", left)
	}
}
