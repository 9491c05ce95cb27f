package train_test

import (
	"errors"
	"strings"
	"testing"

	"peftbench/methods"
	"peftbench/tasks"
	"peftbench/train"
	"peftbench/trainer"
)

// TestHugeLRDiverges: lr = 1e6 drives the loss to ~1e27 while it stays
// finite; the trainer calls that diverged (the loss exceeds
// trainer.DivergenceFactor × the first step's loss) instead of reporting it.
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
	var de *trainer.DivergedError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v (target_loss %v), want a *DivergedError", err, rec.summary["target_loss"])
	}
	if de.Step < 1 || de.Step >= cfg.Steps || !strings.Contains(de.Error(), "exceeds 1000 × the initial loss") {
		t.Errorf("%v: want the exploded loss named, at a step within the run", de)
	}
}
