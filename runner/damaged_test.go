package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/results"
)

// TestResumeDamagedShard: resuming a sweep with a damaged shard stops with
// an error naming the file and the remedy, reruns nothing, deletes
// nothing; once the user deletes that trial's folder, the rerun reruns
// that trial only.
func TestResumeDamagedShard(t *testing.T) {
	plan := testPlan("damaged", 3)
	var c counter
	opts := testOptions(t, c.wrap(toy))
	sum, err := Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	trial := results.ShardDir(sum.Dir, plan.Trials[1].ID)
	path := filepath.Join(trial, results.StepsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-20] ^= 0x10
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), plan, opts)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "delete "+trial+" to rerun that trial") {
		t.Fatalf("resume with a damaged shard: err = %v; want one naming %s and the remedy", err, path)
	}
	if c.total() != 3 {
		t.Errorf("the refused resume ran %d trials", c.total()-3)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the damaged shard was removed: %v", err)
	}
	if err := os.RemoveAll(trial); err != nil {
		t.Fatal(err)
	}
	sum, err = Run(context.Background(), plan, opts)
	if err != nil || sum.Skipped != 2 || c.get(plan.Trials[1].ID) != 2 || c.total() != 4 {
		t.Errorf("rerun after deleting the trial: skipped %d, runs %d, %v", sum.Skipped, c.total(), err)
	}
}
