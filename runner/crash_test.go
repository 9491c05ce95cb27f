package runner

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// Environment of the crash test's child process: it runs crashPlan into
// $RUNNER_CRASH_OUT, dropping a marker per trainer start in
// $RUNNER_CRASH_MARKERS.
const (
	envCrashOut     = "RUNNER_CRASH_OUT"
	envCrashMarkers = "RUNNER_CRASH_MARKERS"
)

func TestMain(m *testing.M) {
	if out := os.Getenv(envCrashOut); out != "" {
		os.Exit(crashChild(out, os.Getenv(envCrashMarkers)))
	}
	if out := os.Getenv(envTuneOut); out != "" {
		os.Exit(tuneChild(out)) // tune_test.go
	}
	os.Exit(m.Run())
}

func crashPlan() *sweeps.Plan { return testPlan("crash", 12) }

func crashOptions(out, markers string) Options {
	return Options{Out: out, Workers: 2, CPUs: 4, Now: fixedClock, Trainer: slowToy(markers)}
}

// slowToy is toy at 10 ms a step that marks each start in markers.
func slowToy(markers string) trainerFunc {
	return func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
		name := fmt.Sprintf("%s.%d.%d", t.ID, os.Getpid(), time.Now().UnixNano())
		f, err := os.OpenFile(filepath.Join(markers, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		f.Close()
		for step := 1; step <= t.Train.Steps; step++ {
			if !sleep(ctx, 10*time.Millisecond) {
				return ctx.Err()
			}
			r.Step(step, "train", "loss", toyLoss(t, step))
		}
		toySummary(t, r)
		return nil
	}
}

func crashChild(out, markers string) int {
	if _, err := Run(context.Background(), crashPlan(), crashOptions(out, markers)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child starts the test binary as a crash child.
func child(t *testing.T, out, markers string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashOut+"="+out, envCrashMarkers+"="+markers)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if stderr.Len() > 0 {
			t.Logf("child output:\n%s", stderr.String())
		}
	})
	return cmd
}

// starts counts trainer starts per trial from the markers.
func starts(t *testing.T, markers string) map[string]int {
	t.Helper()
	entries, err := os.ReadDir(markers)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range entries {
		n[strings.SplitN(e.Name(), ".", 2)[0]]++
	}
	return n
}

// TestCrashResume SIGKILLs a sweep mid-run, reruns it, and compares the
// tables with a clean run's: no finished trial ran twice, none is lost, no
// file is damaged, and the tables are byte-identical (the clock is fixed, so
// even the time columns agree).
func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	plan := crashPlan()
	base := t.TempDir()
	out, markers := filepath.Join(base, "crashed"), filepath.Join(base, "markers")
	cleanOut, cleanMarkers := filepath.Join(base, "clean"), filepath.Join(base, "clean-markers")
	for _, d := range []string{markers, cleanMarkers} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(out, plan.Name)

	// Kill the first run once a few trials finished and others run.
	cmd := child(t, out, markers)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the child finished no trial in 30s")
		}
		time.Sleep(5 * time.Millisecond)
		s, err := results.ReadShards(dir)
		if err == nil && len(s) >= 3 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()

	before, err := results.ReadShards(dir)
	if err != nil {
		t.Fatalf("shards after SIGKILL: %v", err)
	}
	if len(before) == len(plan.Trials) {
		t.Fatalf("the child finished all %d trials before it was killed; the test needs a slower trainer", len(before))
	}
	t.Logf("killed with %d of %d trials finished", len(before), len(plan.Trials))

	if err := child(t, out, markers).Wait(); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if err := child(t, cleanOut, cleanMarkers).Wait(); err != nil {
		t.Fatalf("clean run: %v", err)
	}

	after, err := results.ReadShards(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := starts(t, markers)
	for _, tr := range plan.Trials {
		s, ok := after[tr.ID]
		switch {
		case !ok:
			t.Errorf("trial %s lost", tr.ID)
		case s.Trial.Status != results.StatusOK:
			t.Errorf("trial %s: %s %s", tr.ID, s.Trial.Status, s.Trial.Error)
		}
		if _, done := before[tr.ID]; done && n[tr.ID] != 1 {
			t.Errorf("trial %s finished before the kill but started %d times", tr.ID, n[tr.ID])
		}
		if n[tr.ID] < 1 || n[tr.ID] > 2 {
			t.Errorf("trial %s started %d times", tr.ID, n[tr.ID])
		}
	}
	for _, name := range []string{"trials.parquet", "steps.parquet", "spectra.parquet"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(cleanOut, plan.Name, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s after crash and resume differs from a clean run's (%d vs %d bytes)", name, len(got), len(want))
		}
	}
	rows, err := results.ReadTrials(filepath.Join(dir, "trials.parquet"))
	if err != nil || len(rows) != len(plan.Trials) {
		t.Fatalf("trials.parquet: %d rows, %v", len(rows), err)
	}
	for i, row := range rows {
		if want := toyLoss(plan.Trials[i], plan.Trials[i].Train.Steps); row.TargetLoss != want {
			t.Errorf("row %d target_loss = %v, want %v", i, row.TargetLoss, want)
		}
	}
}

// BenchmarkRunNoop runs a 1,000-trial sweep of a trainer that does nothing
// but report one metric: what remains is the runner's own scheduling and
// recording cost (shard write with fsyncs, compaction, manifest), reported
// as ms/trial. The goal is under 5 ms/trial.
func BenchmarkRunNoop(b *testing.B) {
	plan := testPlan("noop", 1000)
	noop := trainerFunc(func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
		r.Step(1, "train", "loss", 1)
		r.Summary("target_loss", 1)
		return nil
	})
	for b.Loop() {
		opts := Options{Out: b.TempDir(), Workers: 2, Trainer: noop}
		sum, err := Run(context.Background(), plan, opts)
		if err != nil || sum.Counts[results.StatusOK] != len(plan.Trials) {
			b.Fatalf("sweep: %v, counts %v", err, sum.Counts)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N*len(plan.Trials)), "ms/trial")
}
