package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"peftbench/results"
	"peftbench/sweeps"
)

// TestConcurrentRunRefused: while one run of a sweep runs, a second run of
// it is refused naming the first's pid, and runs no trial; once the first
// ends the folder is free again.
func TestConcurrentRunRefused(t *testing.T) {
	plan := testPlan("concurrent", 4)
	started, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	var c counter
	opts := testOptions(t, c.wrap(func(ctx context.Context, tr sweeps.Trial, dir string, r Reporter) error {
		if !once.Swap(true) {
			close(started)
			<-release
		}
		return toy(ctx, tr, dir, r)
	}))
	opts.Workers = 1
	first := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), plan, opts)
		first <- err
	}()
	<-started
	var c2 counter
	second := opts
	second.Trainer = c2.wrap(toy)
	second.Force = true // not even --force gets past the lock
	_, err := Run(context.Background(), plan, second)
	close(release)
	if err == nil || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second run: err = %v, want a refusal naming pid %d", err, os.Getpid())
	}
	if c2.total() != 0 {
		t.Errorf("the refused run ran %d trials", c2.total())
	}
	if err := <-first; err != nil {
		t.Fatalf("first run: %v", err)
	}
	if c.total() != 4 {
		t.Errorf("first run ran %d trials, want 4", c.total())
	}
	dir := filepath.Join(opts.Out, plan.Name)
	if _, err := os.Stat(filepath.Join(dir, results.LockFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after the run: %v", err)
	}
	sum, err := Run(context.Background(), plan, second)
	if err != nil || sum.Skipped != 4 || c2.total() != 0 {
		t.Errorf("run after the first ended: skipped %d, ran %d, %v; want all 4 skipped", sum.Skipped, c2.total(), err)
	}
}

// TestStaleLockTakenOver: a lock file left by a killed run (its pid dead)
// does not block the next run.
func TestStaleLockTakenOver(t *testing.T) {
	plan := testPlan("stalelock", 2)
	opts := testOptions(t, trainerFunc(toy))
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	dir := filepath.Join(opts.Out, plan.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	stale := fmt.Sprintf(`{"pid":%d,"host":%q,"started":"2025-01-01T00:00:00Z"}`+"\n", dead.Process.Pid, host)
	if err := os.WriteFile(filepath.Join(dir, results.LockFile), []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), plan, opts)
	if err != nil || sum.Counts[results.StatusOK] != 2 {
		t.Fatalf("run over a stale lock: %v, counts %v", err, sum.Counts)
	}
}

// TestOrphanTempsRemoved: a rerun removes the temp files a crashed writer
// left in the sweep folder and the trial folders, and nothing else.
func TestOrphanTempsRemoved(t *testing.T) {
	plan := testPlan("orphans", 3)
	opts := testOptions(t, trainerFunc(toy))
	sum, err := Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	trial := results.ShardDir(sum.Dir, plan.Trials[1].ID)
	orphans := []string{
		filepath.Join(sum.Dir, ".tmp-trials.parquet-1234567"),
		filepath.Join(sum.Dir, ".tmp-manifest.json-99"),
		filepath.Join(trial, ".tmp-trial.parquet-42"),
		filepath.Join(trial, ".tmp-steps.parquet-7"),
	}
	kept := []string{filepath.Join(trial, ".tmp-weights.safetensors-1"), filepath.Join(sum.Dir, "notes.txt")}
	for _, p := range append(append([]string(nil), orphans...), kept...) {
		if err := os.WriteFile(p, []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Run(context.Background(), plan, opts); err != nil {
		t.Fatal(err)
	}
	for _, p := range orphans {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("orphan %s not removed", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}

// TestDiskFullStopsLaunching: once a shard write fails for want of space,
// no trial starts; the run's error says so and how to resume.
func TestDiskFullStopsLaunching(t *testing.T) {
	plan := testPlan("diskfull", 6)
	opts := testOptions(t, trainerFunc(toy))
	opts.Workers = 1
	r, err := newRun(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	var ran atomic.Int32
	r.trialFn = func(ctx context.Context, tr sweeps.Trial, devices []string) error {
		n := ran.Add(1)
		if err := r.runTrial(ctx, tr, devices); err != nil {
			return err
		}
		if n == 2 { // the second trial's shard did not fit
			return fmt.Errorf("runner: trial %s: results: write %s: %w", tr.ID, results.ShardDir(r.dir, tr.ID),
				&os.PathError{Op: "write", Path: "steps.parquet", Err: syscall.ENOSPC})
		}
		return nil
	}
	_, err = r.run(context.Background())
	if got := ran.Load(); got != 2 {
		t.Errorf("%d trials started, want 2 (none after the disk filled)", got)
	}
	if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "disk full") ||
		!strings.Contains(err.Error(), "4 trials not started") || !strings.Contains(err.Error(), "free space and rerun to resume") {
		t.Errorf("err = %v; want disk full, 4 trials not started, and how to resume", err)
	}
}
