package train_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"peftbench/methods"
	"peftbench/tasks"
	"peftbench/train"
)

// TestHugeLRDiverges: lr = 1e6 drives the loss to ~1e27 while it stays
// finite; the trainer calls that diverged (the loss exceeds
// DivergenceFactor × the first step's loss) instead of reporting it.
func TestHugeLRDiverges(t *testing.T) {
	taskOpts, err := tasks.ResolveOptions("teacher-shift", map[string]any{"pretrain_steps": 100, "eval_size": 256})
	if err != nil {
		t.Fatal(err)
	}
	mo, err := methods.ResolveOptions("lora", 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Before the explosion rule, this trial ended ok with target_loss 2e27:
	// the loss grows without becoming NaN.
	cfg := train.Config{
		Method: "lora", MethodOptions: mo, Task: "teacher-shift", TaskOptions: taskOpts,
		Layers: []string{"fc1", "fc2"}, Steps: 30, Batch: 32, LR: 1e6, Optimizer: "adamw",
		Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Schedule: "constant",
	}
	rec, _, err := run(t, cfg)
	var de *train.DivergedError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v (target_loss %v), want a *DivergedError", err, rec.summary["target_loss"])
	}
	if de.Step < 1 || de.Step >= cfg.Steps || !strings.Contains(de.Error(), "exceeds 1000 × the initial loss") {
		t.Errorf("%v: want the exploded loss named, at a step within the run", de)
	}
}

func TestExploded(t *testing.T) {
	for _, c := range []struct {
		initial, loss float64
		want          bool
	}{
		{2.3, 2.3, false}, {2.3, 2299, false}, {2.3, 2301, true}, {2.3, 1e27, true},
		{0.01, 900, false}, {0.01, 1001, true}, // the initial loss is floored at 1
		{2.3, math.Inf(1), true}, {2.3, math.NaN(), false}, // non-finite losses are checked apart
	} {
		if got := train.Exploded(c.initial, c.loss); got != c.want {
			t.Errorf("Exploded(%v, %v) = %v, want %v", c.initial, c.loss, got, c.want)
		}
	}
}
