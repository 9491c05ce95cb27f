package runner

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/results"
	"peftbench/sweeps"
)

// TestDivergedCommandTrainer: the runner's divergence rule applies to what
// any trainer reports: a NaN or Inf summary metric, a training loss that
// explodes while staying finite, a target loss far above the one before.
func TestDivergedCommandTrainer(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		errHas       string
	}{
		{"NaN summary", `
echo '{"type":"metric","step":1,"split":"train","name":"loss","value":0.5}'
echo '{"type":"summary","metrics":{"target_loss":"NaN","target_metric":0.5}}'
`, "diverged at step 1: non-finite summary metric target_loss"},
		{"Inf summary", `
echo '{"type":"summary","metrics":{"target_loss":0.3,"forgetting":"Inf"}}'
`, "non-finite summary metric forgetting"},
		{"exploded train loss", `
echo '{"type":"metric","step":0,"split":"train","name":"loss","value":2.3}'
echo '{"type":"metric","step":1,"split":"train","name":"loss","value":1e27}'
echo '{"type":"summary","metrics":{"target_loss":0.3}}'
`, "diverged at step 1: train loss 1e+27 exceeds 1000 × the initial train loss 2.3"},
		{"exploded target loss", `
echo '{"type":"summary","metrics":{"target_loss":1e27,"target_loss_before":2.3}}'
`, "target_loss 1e+27 exceeds 1000 × target_loss_before 2.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			script := filepath.Join(t.TempDir(), "trainer.sh")
			writeScript(t, script, tc.script)
			plan := testPlan("diverged-summary", 1)
			plan.Trainer = sweeps.TrainerSpec{Kind: "command", Command: []string{script}}
			sum, err := Run(context.Background(), plan, testOptions(t, nil))
			if err != nil {
				t.Fatal(err)
			}
			s := shards(t, sum.Dir)[plan.Trials[0].ID]
			if s.Trial.Status != results.StatusDiverged || !strings.Contains(s.Trial.Error, tc.errHas) {
				t.Errorf("status %s %q, want diverged with %q", s.Trial.Status, s.Trial.Error, tc.errHas)
			}
		})
	}
}
