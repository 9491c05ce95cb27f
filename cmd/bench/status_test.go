package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/results"
)

// TestStatusDamagedShard: one damaged shard is reported as damaged, with
// the file and the remedy, beside the other trials' statuses — not an error
// that hides them.
func TestStatusDamagedShard(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dmg")
	plan := make([]struct{}, 3)
	trials, _ := json.Marshal(plan)
	if err := results.WriteManifest(dir, &results.Manifest{Sweep: "dmg", Trials: trials}); err != nil {
		t.Fatal(err)
	}
	for i, status := range []string{results.StatusOK, results.StatusFailed, results.StatusOK} {
		row := results.TrialRow{Sweep: "dmg", TrialID: fmt.Sprintf("t%d", i), Index: int64(i), Task: "teacher-shift",
			Method: "lora", Rank: 4, Status: status}
		row.ClearMetrics()
		if status == results.StatusFailed {
			row.Error = "trainer crashed"
		}
		if err := results.WriteShard(dir, &results.Shard{Trial: row}); err != nil {
			t.Fatal(err)
		}
	}
	bad := filepath.Join(results.ShardDir(dir, "t2"), "trial.parquet")
	data, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := runStatus([]string{dir}, &out, &errb); err != nil {
		t.Fatalf("bench status: %v\n%s", err, errb.String())
	}
	text := out.String()
	for _, want := range []string{"3 trials, 0 pending", "ok        1", "failed    1", "damaged   1", "trainer crashed", bad, "delete"} {
		if !strings.Contains(text, want) {
			t.Errorf("bench status output lacks %q:\n%s", want, text)
		}
	}
}

// TestResultsCommandsWarnStale: a trials.parquet older than the shards
// (a run killed while resuming) is read from the shards, and fit, intruders
// and plot say so on stderr rather than reading the folder silently.
func TestResultsCommandsWarnStale(t *testing.T) {
	dir := lawSweep(t)
	if err := results.Compact(dir); err != nil {
		t.Fatal(err)
	}
	row := results.TrialRow{Sweep: "law", TrialID: "late", Index: 999, Task: "line", Method: "lora", Status: results.StatusOK,
		TrainableParams: 1000, Steps: 100}
	row.ClearMetrics()
	row.TargetLoss, row.Forgetting = 0.5, 2
	if err := results.WriteShard(dir, &results.Shard{Trial: row}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		run  func(args []string, stdout, stderr io.Writer) error
	}{{"fit", runFit}, {"intruders", runIntruders}} {
		var out, errb bytes.Buffer
		c.run([]string{dir}, &out, &errb) // the verdict on the data is not this test's
		if !strings.Contains(errb.String(), "bench "+c.name+": warning: trials.parquet is stale") {
			t.Errorf("bench %s stderr lacks the stale-table warning:\n%s", c.name, errb.String())
		}
	}
}
