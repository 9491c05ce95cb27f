package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/results"
	"peftbench/runner"
	"peftbench/sweeps"
)

type trialTrainerFunc func(ctx context.Context, t sweeps.Trial, dir string, r runner.Reporter) error

func (f trialTrainerFunc) Run(ctx context.Context, t sweeps.Trial, dir string, r runner.Reporter) error {
	return f(ctx, t, dir, r)
}

// submitted makes a sweep folder as `bench run` leaves it for Slurm, with a
// fake sbatch, and returns it.
func submitted(t *testing.T) (string, *sweeps.Plan) {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "sbatch"), []byte("#!/bin/sh\necho 42\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	plan := &sweeps.Plan{Name: "tr", Source: "name = \"tr\"\n", SourceHash: "h",
		Executor: sweeps.Executor{Kind: "slurm"}}
	for i, seed := range []int64{1, 2} {
		plan.Trials = append(plan.Trials, sweeps.Trial{Sweep: "tr", ID: "trial" + string(rune('a'+i)), Index: i,
			Method: "lora", Rank: 2, Task: "toy", Seed: seed, Train: sweeps.TrainConfig{Steps: 3}})
	}
	sum, err := runner.RunSlurm(context.Background(), plan, runner.SlurmOptions{
		Options: runner.Options{Out: t.TempDir(), Detach: true}, Worker: []string{"/opt/bench"}})
	if err != nil {
		t.Fatal(err)
	}
	return sum.Dir, plan
}

func TestTrialCommand(t *testing.T) {
	dir, plan := submitted(t)
	saved := trialOptions
	t.Cleanup(func() { trialOptions = saved })
	trialOptions = func(*sweeps.Plan, io.Writer) (runner.Options, error) {
		return runner.Options{Trainer: trialTrainerFunc(func(_ context.Context, tr sweeps.Trial, _ string, r runner.Reporter) error {
			if tr.Seed == 2 {
				return errors.New("planted failure")
			}
			for s := 1; s <= tr.Train.Steps; s++ {
				r.Step(s, "train", "loss", 1/float64(s))
			}
			r.Summary("target_loss", 0.25)
			return nil
		})}, nil
	}
	for _, tc := range []struct {
		name   string
		args   []string
		err    string // "" for success
		status string // the shard's status after
		index  int
	}{
		{"ok", []string{"--sweep", dir, "--index", "0", "--attempt", "2"}, "", results.StatusOK, 0},
		{"failed trial exits non-zero", []string{"--sweep", dir, "--index", "1"}, "trial 1 ended failed", results.StatusFailed, 1},
		{"no index", []string{"--sweep", dir}, "--sweep and --index are required", "", 0},
		{"no sweep", []string{"--index", "0"}, "--sweep and --index are required", "", 0},
		{"index beyond", []string{"--sweep", dir, "--index", "7"}, "no trial with index 7", "", 0},
		{"bad attempt", []string{"--sweep", dir, "--index", "0", "--attempt", "0"}, "--attempt 0", "", 0},
		{"extra argument", []string{"--sweep", dir, "--index", "0", "more"}, `unexpected argument "more"`, "", 0},
		{"not submitted", []string{"--sweep", t.TempDir(), "--index", "0"}, "not a sweep submitted to Slurm", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(append([]string{"trial"}, tc.args...), &stdout, &stderr)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q\nstderr: %s", err, tc.err, stderr.String())
			}
			if tc.status == "" {
				return
			}
			s, err := results.ReadShard(dir, plan.Trials[tc.index].ID)
			if err != nil {
				t.Fatal(err)
			}
			if s.Trial.Status != tc.status {
				t.Errorf("shard status %s, want %s", s.Trial.Status, tc.status)
			}
			if tc.status == results.StatusOK && (s.Trial.Attempts != 2 || s.Trial.TargetLoss != 0.25 || len(s.Steps) != 3) {
				t.Errorf("shard %+v, %d steps", s.Trial, len(s.Steps))
			}
		})
	}
}
