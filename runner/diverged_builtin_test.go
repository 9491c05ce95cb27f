package runner_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"peftbench/catalog"
	"peftbench/results"
	"peftbench/runner"
	"peftbench/sweeps"
	"peftbench/tasks"
	"peftbench/train"
)

// TestBuiltinHugeLRDiverges: lr = 1e6 drives the builtin's loss to ~1e27
// without a NaN; the trial is recorded diverged, not ok, while the same
// trial at a sane learning rate stays ok.
func TestBuiltinHugeLRDiverges(t *testing.T) {
	const sweep = `name = "huge-lr"
seeds = [0]

[grid]
method = ["lora"]
rank = [4]
task = ["teacher-shift"]
lr = [1e6, 3e-3]

[defaults]
steps = 30
batch = 32
optimizer = "adamw"
eval_every = 0
targets = ["fc1", "fc2"]

[task.teacher-shift]
pretrain_steps = 100
eval_size = 256
`
	plan, err := sweeps.Parse("huge-lr.toml", []byte(sweep), catalog.Registries{})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := tasks.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := runner.Options{Out: t.TempDir(), Trainer: runner.Builtin{T: &train.Trainer{Cache: cache, NoWeights: true}},
		CPUs: 2, Workers: 1, Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
	sum, err := runner.Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := results.ReadTrials(filepath.Join(sum.Dir, "trials.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d trials, want 2", len(rows))
	}
	for _, r := range rows {
		var tr sweeps.Trial
		for _, p := range plan.Trials {
			if p.ID == r.TrialID {
				tr = p
			}
		}
		switch tr.Train.LR {
		case 1e6:
			if r.Status != results.StatusDiverged || !strings.Contains(r.Error, "exceeds 1000 × the initial loss") {
				t.Errorf("lr 1e6: status %s %q (target_loss %g), want diverged with the exploded loss", r.Status, r.Error, r.TargetLoss)
			}
		default:
			if r.Status != results.StatusOK {
				t.Errorf("lr %g: status %s %q, want ok", tr.Train.LR, r.Status, r.Error)
			}
		}
	}
}
