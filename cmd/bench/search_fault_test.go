package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"peftbench/results"
)

// searchFaultSweep is a random search of 16 learning rates (LoRA on
// teacher-shift); asha adds successive halving over it (rungs 10, 30, 60).
// The rungs compare validation accuracy (the default): selection never
// looks at the test split.
const searchFaultSweep = `name = "%s"
seeds = [0]
[grid]
method = ["lora"]
rank = [2]
task = ["teacher-shift"]
[task.teacher-shift]
pretrain_steps = 200
[defaults]
steps = 60
batch = 32
eval_every = 10
[resources]
workers = 2
[search]
kind = "random"
n = 16
seed = 5
lr = {log_uniform = [1e-4, 1e-1]}
%s`

const searchFaultASHA = `[early_stopping]
kind = "asha"
eta = 3
min_steps = 10
`

// TestSearchKill kills (SIGKILL) a 16-point random search and the same
// search under ASHA at seeded random points of their runs, resumes each,
// and checks that the resumed tables equal an uninterrupted run's (trials
// row by row without wall times, steps.parquet byte for byte): the same
// trials, statuses (stopped ones included), rungs and steps_executed.
// Skipped under -short.
func TestSearchKill(t *testing.T) {
	bench := benchBinary(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	rng := rand.New(rand.NewPCG(17, 2026))
	for _, c := range []struct{ name, extra string }{{"search", ""}, {"asha", searchFaultASHA}} {
		t.Run(c.name, func(t *testing.T) {
			sweep := filepath.Join(dir, c.name+".toml")
			if err := os.WriteFile(sweep, []byte(fmt.Sprintf(searchFaultSweep, c.name, c.extra)), 0o644); err != nil {
				t.Fatal(err)
			}
			run := func(out string) time.Duration {
				var stderr bytes.Buffer
				cmd := exec.Command(bench, "run", sweep, "--out", out, "--cache", cache)
				cmd.Stderr = &stderr
				start := time.Now()
				if err := cmd.Run(); err != nil {
					t.Fatalf("bench run %s: %v\n%s", out, err, stderr.String())
				}
				return time.Since(start)
			}
			refOut := filepath.Join(dir, c.name+"-ref")
			run(refOut)
			took := run(filepath.Join(dir, c.name+"-ref2")) // base cached
			ref := readTables(t, filepath.Join(refOut, c.name))
			if !ref.equal(t, readTables(t, filepath.Join(dir, c.name+"-ref2", c.name))) {
				t.Fatal("two uninterrupted runs differ")
			}
			statuses := map[string]int{}
			for _, r := range ref.trials {
				statuses[r.Status]++
			}
			if len(ref.trials) != 16 {
				t.Fatalf("%d trials, want 16", len(ref.trials))
			}
			if c.extra != "" && (statuses[results.StatusStopped] != 14 || statuses[results.StatusOK] != 2) {
				t.Errorf("ASHA statuses %v, want 14 stopped and 2 ok (16 → 6 → 2)", statuses)
			}
			kills := 0
			for i := 0; kills < 3; i++ {
				if i > 12 {
					t.Fatalf("only %d of %d runs were still running when killed", kills, i)
				}
				out := filepath.Join(dir, fmt.Sprintf("%s-kill%d", c.name, i))
				cmd := exec.Command(bench, "run", sweep, "--out", out, "--cache", cache)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				wait := time.Duration((0.1 + 0.8*rng.Float64()) * float64(took))
				select {
				case <-exited:
					continue // ended before its kill
				case <-time.After(wait):
					cmd.Process.Kill()
					<-exited
				}
				kills++
				left, _ := results.ReadShards(filepath.Join(out, c.name))
				run(out)
				if !ref.equal(t, readTables(t, filepath.Join(out, c.name))) {
					t.Errorf("killed after %v with %d shards written: the resumed tables differ from the reference", wait, len(left))
				}
				t.Logf("killed after %v (of %v) with %d shards written; resumed to the reference", wait.Round(time.Millisecond), took.Round(time.Millisecond), len(left))
			}
		})
	}
}
