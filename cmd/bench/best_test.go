package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/runner"
	"peftbench/sweeps"
)

// bestSweep: lr and alpha tuned for LoRA, lr for full fine-tuning, on
// teacher-shift, tested on 3 seeds.
const bestSweep = `
name = "best"
[protocol]
kind = "tune"
test_seeds = 3
[grid]
method = ["lora", "full"]
rank = [4]
task = ["teacher-shift"]
lr = [1e-3, 1e-2]
alpha = ["r", "2r"]
[defaults]
steps = 3
targets = ["fc1"]
`

// bestToy trains nothing: its validation metric peaks at lr = 1e-2 and
// alpha = 2r, its test metric at lr = 1e-3, with a little seed noise.
type bestToy struct{}

func (bestToy) Run(ctx context.Context, t sweeps.Trial, dir string, r runner.Reporter) error {
	x := math.Log10(t.Train.LR)
	a, _ := t.MethodOptions["alpha"].(float64)
	noise := float64(t.Seed%3) * 0.01
	r.Step(1, "train", "loss", 1)
	r.Summary("val_metric", 0.9-math.Abs(x+2)/10+a/1000)
	r.Summary("target_metric", 0.8-math.Abs(x+3)/10+noise)
	r.Summary("target_loss", 0.5+noise)
	return nil
}

// runBestSweep runs bestSweep into a temporary folder and returns the
// sweep's results folder.
func runBestSweep(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "best.toml")
	if err := os.WriteFile(f, []byte(bestSweep), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := loadPlan(f)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	if _, err := runner.Run(context.Background(), plan, runner.Options{Out: out, Workers: 2, CPUs: 2, Trainer: bestToy{}, Now: now}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(out, "best")
}

// TestBestGolden: bench best's table and JSON for a small tune sweep.
func TestBestGolden(t *testing.T) {
	dir := runBestSweep(t)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"best.txt", []string{dir}},
		{"best.json", []string{"--json", dir}},
	} {
		var out, errb bytes.Buffer
		if err := runBest(tc.args, &out, &errb); err != nil {
			t.Fatalf("bench best %v: %v\n%s", tc.args, err, errb.String())
		}
		checkGolden(t, tc.golden, "bench best "+strings.Join(tc.args[:len(tc.args)-1], " "), out.Bytes())
	}

	var out, errb bytes.Buffer
	if err := runStatus([]string{dir}, &out, &errb); err != nil || !strings.Contains(out.String(), "tune: test phase: 2 of 2 groups chosen") {
		t.Errorf("bench status: %v\n%s", err, out.String())
	}
}

// TestBestNotTune: a folder without tune.json is refused with a reason.
func TestBestNotTune(t *testing.T) {
	dir := runBestSweep(t)
	if err := os.Remove(filepath.Join(dir, results.TuneFile)); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := runBest([]string{dir}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "not the results folder of a tune sweep") {
		t.Errorf("bench best without tune.json: %v", err)
	}
	out.Reset()
	if err := runStatus([]string{dir}, &out, &errb); err != nil || !strings.Contains(out.String(), "tune: search phase") {
		t.Errorf("bench status of a tune sweep in its search phase: %v\n%s", err, out.String())
	}
}
