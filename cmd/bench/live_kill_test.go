package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"peftbench/results"
)

// liveKillSweep: two builtin trials, one at a time, long enough (about a
// second each) for the test to see the first one's live log grow.
const liveKillSweep = `name = "livekill"
seeds = 2
[grid]
method = ["lora"]
rank = [2]
task = ["teacher-shift"]
[task.teacher-shift]
pretrain_steps = 50
eval_size = 128
[defaults]
steps = 4000
batch = 16
lr = 3e-3
eval_every = 500
targets = ["fc1", "fc2"]
[resources]
workers = 1
`

// TestLiveLogKill builds bench, runs a builtin sweep, and kills it with
// SIGKILL once the first trial's live log holds some steps. The killed
// folder has that trial's log and no shard; `bench status` reports it
// running (or interrupted) at its last step. `bench run` again resumes:
// afterwards no live log is left, and steps.parquet holds every (trial,
// step, split, metric) once: the two trials, same schedule, have as many
// rows each, and the killed trial's rows that its log had carry the
// rerun's values (the builtin is deterministic). Catches: a rerun
// appending to the killed attempt's log, compaction folding a live log
// into steps.parquet, a live log left after the resume, status not
// showing a trial the kill interrupted.
func TestLiveLogKill(t *testing.T) {
	bench := benchBinary(t)
	dir := t.TempDir()
	sweep := filepath.Join(dir, "livekill.toml")
	if err := os.WriteFile(sweep, []byte(liveKillSweep), 0o644); err != nil {
		t.Fatal(err)
	}
	out, cache := filepath.Join(dir, "out"), filepath.Join(dir, "cache")
	sweepDir := filepath.Join(out, "livekill")

	var stderr bytes.Buffer
	cmd := exec.Command(bench, "run", sweep, "--out", out, "--cache", cache)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var killedID string
	deadline := time.Now().Add(60 * time.Second)
	for killedID == "" {
		ids, _ := results.LiveTrials(sweepDir)
		for _, id := range ids {
			if lv, err := results.ReadLive(sweepDir, id); err == nil && len(lv.Steps) >= 20 {
				killedID = id
				break
			}
		}
		if killedID != "" {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("bench run ended before a live log held 20 steps: %v\n%s", err, stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			t.Fatalf("no live log held 20 steps within 60s\n%s", stderr.String())
		}
	}
	cmd.Process.Kill()
	<-exited

	before, err := results.ReadLive(sweepDir, killedID)
	if err != nil {
		t.Fatalf("the killed trial's live log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(results.ShardDir(sweepDir, killedID), "trial.parquet")); err == nil {
		t.Skipf("trial %s finished as it was killed; nothing interrupted", killedID)
	}
	status := exec.Command(bench, "status", sweepDir)
	text, err := status.CombinedOutput()
	if err != nil {
		t.Fatalf("bench status: %v\n%s", err, text)
	}
	last := before.Steps[len(before.Steps)-1].Step
	for _, want := range []string{"running   1", killedID, "attempt 1, step ", "of 4000", "interrupted"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("bench status after the kill lacks %q:\n%s", want, text)
		}
	}
	t.Logf("killed at step %d of trial %s:\n%s", last, killedID, text)

	rerun := exec.Command(bench, "run", sweep, "--out", out, "--cache", cache)
	if b, err := rerun.CombinedOutput(); err != nil {
		t.Fatalf("bench run after the kill: %v\n%s", err, b)
	}
	if ids, err := results.LiveTrials(sweepDir); err != nil || len(ids) > 0 {
		t.Errorf("live logs after the resumed run: %v, %v", ids, err)
	}
	steps, err := results.ReadSteps(filepath.Join(sweepDir, results.StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		id, split, metric string
		step              int64
	}
	final := map[key]float64{}
	perTrial := map[string]int{}
	for _, s := range steps {
		k := key{s.TrialID, s.Split, s.Metric, s.Step}
		if _, dup := final[k]; dup {
			t.Errorf("steps.parquet holds %+v twice", k)
		}
		final[k] = s.Value
		perTrial[s.TrialID]++
	}
	if len(perTrial) != 2 {
		t.Fatalf("steps.parquet holds rows of %d trials, want 2", len(perTrial))
	}
	var counts []int
	for _, n := range perTrial {
		counts = append(counts, n)
	}
	if counts[0] != counts[1] {
		t.Errorf("rows per trial %v: the two trials share a schedule, want equal counts", perTrial)
	}
	for _, s := range before.Steps {
		v, ok := final[key{killedID, s.Split, s.Metric, s.Step}]
		if !ok || v != s.Value {
			t.Errorf("killed attempt's row %+v: the resumed run has %v (present %v)", s, v, ok)
		}
	}
	status = exec.Command(bench, "status", sweepDir)
	if text, err = status.CombinedOutput(); err != nil || strings.Contains(string(text), "running") {
		t.Errorf("bench status after the resume: %v\n%s", err, text)
	}
}
