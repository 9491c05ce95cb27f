package runner_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"peftbench/catalog"
	"peftbench/results"
	"peftbench/runner"
	"peftbench/sweeps"
	"peftbench/tasks"
	"peftbench/train"
)

// The integration tests run sweeps on a real Slurm (ci/slurm.sh start). The
// array tasks run this test binary, which stands in for `bench trial` when
// slurmWorkerEnv is set (Slurm passes the submitter's environment on).
const (
	slurmWorkerEnv = "PEFTBENCH_TEST_SLURM_WORKER"
	// slurmFaultsEnv names a folder of fault flags for the worker:
	// fail-<index> fails the trial's next attempt once; hold-<index> makes
	// the next attempt write running-<index> (its Slurm job) and wait to be
	// cancelled.
	slurmFaultsEnv = "PEFTBENCH_TEST_SLURM_FAULTS"
)

func init() {
	if os.Getenv(slurmWorkerEnv) != "1" {
		return
	}
	os.Exit(slurmWorker(os.Args[1:]))
}

// slurmTrainer is what both executors train with in these tests: the builtin
// engine without weight files.
func slurmTrainer() runner.Trainer { return runner.Builtin{T: &train.Trainer{NoWeights: true}} }

// slurmWorker is `bench trial` with slurmTrainer and the fault flags.
func slurmWorker(args []string) int {
	if len(args) == 0 || args[0] != "trial" {
		fmt.Fprintf(os.Stderr, "slurm test worker: want trial, got %q\n", args)
		return 2
	}
	fs := flag.NewFlagSet("trial", flag.ContinueOnError)
	sweep := fs.String("sweep", "", "")
	index := fs.Int("index", -1, "")
	attempt := fs.Int("attempt", 1, "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	plan, err := runner.ReadPlan(*sweep)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tr := faultTrainer{inner: slurmTrainer(), dir: os.Getenv(slurmFaultsEnv)}
	status, err := runner.RunTrial(ctx, plan, *sweep, *index, *attempt, runner.Options{Trainer: tr, Now: fixedTime})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("trial %d: %s\n", *index, status)
	if status != results.StatusOK && status != results.StatusDiverged {
		return 1
	}
	return 0
}

func fixedTime() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// faultTrainer plants the faults its flag folder asks for.
type faultTrainer struct {
	inner runner.Trainer
	dir   string
}

func (f faultTrainer) Run(ctx context.Context, t sweeps.Trial, dir string, r runner.Reporter) error {
	if f.dir != "" {
		if os.Remove(filepath.Join(f.dir, fmt.Sprintf("fail-%d", t.Index))) == nil {
			return errors.New("planted failure")
		}
		if os.Remove(filepath.Join(f.dir, fmt.Sprintf("hold-%d", t.Index))) == nil {
			job := os.Getenv("SLURM_ARRAY_JOB_ID") + "_" + os.Getenv("SLURM_ARRAY_TASK_ID")
			if err := os.WriteFile(filepath.Join(f.dir, fmt.Sprintf("running-%d", t.Index)), []byte(job), 0o644); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Minute):
				return errors.New("held trial was not cancelled")
			}
		}
	}
	return f.inner.Run(ctx, t, dir, r)
}

// slurmSweep is 12 short builtin trials: lora and dora at ranks 2 and 4 on
// teacher-shift, three seeds. %s is the [executor] table.
const slurmSweep = `name = "slurm12"
seeds = [1, 2, 3]

[grid]
method = ["lora", "dora"]
rank = [2, 4]
task = ["teacher-shift"]

[defaults]
steps = 8
batch = 8
lr = 1e-2
optimizer = "adamw"
schedule = "cosine"
warmup = 2
eval_every = 4
targets = ["fc1", "fc2", "head"]
pretrain_steps = 20
eval_size = 128

[resources]
workers = 2
threads_per_trial = 1
retries = 2
timeout = "5m"
%s`

const slurmExecutor = `
[executor]
kind = "slurm"
throttle = 2
cpus_per_task = 1
poll_every = "300ms"
`

// needSlurm skips the test unless a Slurm cluster answers here.
func needSlurm(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs sweeps on Slurm; skipped with -short")
	}
	if _, err := exec.LookPath("sbatch"); err != nil {
		t.Skip("no Slurm here (sbatch not on PATH); start one with `ci/slurm.sh start`")
	}
	out, err := exec.Command("sinfo", "-h", "-o", "%T").Output()
	state := strings.TrimSpace(string(out))
	if err != nil || !(strings.HasPrefix(state, "idle") || strings.HasPrefix(state, "mixed") || strings.HasPrefix(state, "alloc")) {
		t.Skipf("Slurm is installed but no node is up (sinfo: %q, %v); start one with `ci/slurm.sh start`", state, err)
	}
}

// slurmSetup loads the sweep twice (local and slurm executors), sharing a
// warm model cache, and makes this test binary the array's worker.
func slurmSetup(t *testing.T) (tmp string, local, slurm *sweeps.Plan) {
	tmp = t.TempDir()
	cache := filepath.Join(tmp, "cache")
	t.Setenv(tasks.CacheEnv, cache)
	t.Setenv(slurmWorkerEnv, "1")
	load := func(name, executor string) *sweeps.Plan {
		path := filepath.Join(tmp, name+".toml")
		if err := os.WriteFile(path, []byte(fmt.Sprintf(slurmSweep, executor)), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := sweeps.Load(path, catalog.Registries{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Trials) != 12 {
			t.Fatalf("%s: %d trials, want 12", name, len(p.Trials))
		}
		return p
	}
	return tmp, load("local", ""), load("slurm", slurmExecutor)
}

func runLocal(t *testing.T, plan *sweeps.Plan, out string) string {
	t.Helper()
	t.Setenv(slurmWorkerEnv, "") // not in this process
	defer os.Setenv(slurmWorkerEnv, "1")
	sum, err := runner.Run(context.Background(), plan, runner.Options{Out: out, Trainer: slurmTrainer(),
		CPUs: min(2, runtime.NumCPU()), Now: fixedTime})
	if err != nil {
		t.Fatal(err)
	}
	return sum.Dir
}

func runOnSlurm(t *testing.T, ctx context.Context, plan *sweeps.Plan, out string) (runner.Summary, error) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return runner.RunSlurm(ctx, plan, runner.SlurmOptions{
		Options: runner.Options{Out: out, Now: fixedTime, Log: testLog{t}},
		Worker:  []string{self},
	})
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// sameMetrics fails unless the two trials tables hold equal metrics, bit for
// bit, trial for trial.
func sameMetrics(t *testing.T, wantDir, gotDir string) []results.TrialRow {
	t.Helper()
	want, err := results.ReadTrials(filepath.Join(wantDir, "trials.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := results.ReadTrials(filepath.Join(gotDir, "trials.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("slurm: %d trials, local: %d", len(got), len(want))
	}
	bits := func(v float64) uint64 { return math.Float64bits(v) }
	for i := range want {
		w, g := want[i], got[i]
		if g.TrialID != w.TrialID || g.Index != w.Index {
			t.Fatalf("row %d: slurm trial %s (index %d), local %s (index %d)", i, g.TrialID, g.Index, w.TrialID, w.Index)
		}
		if g.Status != results.StatusOK {
			t.Errorf("trial %d: status %s: %s", g.Index, g.Status, g.Error)
			continue
		}
		for _, m := range []struct {
			name string
			w, g float64
		}{
			{"target_loss", w.TargetLoss, g.TargetLoss},
			{"target_metric", w.TargetMetric, g.TargetMetric},
			{"retain_loss_before", w.RetainLossBefore, g.RetainLossBefore},
			{"retain_loss_after", w.RetainLossAfter, g.RetainLossAfter},
			{"retain_metric_before", w.RetainMetricBefore, g.RetainMetricBefore},
			{"retain_metric_after", w.RetainMetricAfter, g.RetainMetricAfter},
			{"forgetting", w.Forgetting, g.Forgetting},
			{"trainable_params", float64(w.TrainableParams), float64(g.TrainableParams)},
			{"total_params", float64(w.TotalParams), float64(g.TotalParams)},
			{"steps", float64(w.Steps), float64(g.Steps)},
		} {
			if bits(m.w) != bits(m.g) {
				t.Errorf("trial %d %s: slurm %v, local %v", g.Index, m.name, m.g, m.w)
			}
		}
		if len(g.Extra) != len(w.Extra) {
			t.Errorf("trial %d: slurm extra metrics %v, local %v", g.Index, g.Extra, w.Extra)
		}
		for k, v := range w.Extra {
			if train.IsTiming(k) {
				continue // wall times differ between any two runs
			}
			if bits(g.Extra[k]) != bits(v) {
				t.Errorf("trial %d %s: slurm %v, local %v", g.Index, k, g.Extra[k], v)
			}
		}
		if math.IsNaN(g.TargetLoss) {
			t.Errorf("trial %d: no target loss", g.Index)
		}
	}
	ws, err := results.ReadSteps(filepath.Join(wantDir, "steps.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	gs, err := results.ReadSteps(filepath.Join(gotDir, "steps.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != len(ws) || len(ws) == 0 {
		t.Fatalf("steps: slurm %d rows, local %d", len(gs), len(ws))
	}
	for i := range ws {
		if gs[i].TrialID != ws[i].TrialID || gs[i].Step != ws[i].Step || gs[i].Metric != ws[i].Metric || bits(gs[i].Value) != bits(ws[i].Value) {
			t.Fatalf("steps row %d: slurm %+v, local %+v", i, gs[i], ws[i])
		}
	}
	return got
}

// arrays returns the array job IDs recorded for a sweep and their --array
// specs, from the batch scripts.
func arrays(t *testing.T, dir string) []string {
	t.Helper()
	var specs []string
	for n := 1; ; n++ {
		data, err := os.ReadFile(filepath.Join(dir, ".slurm", "array-"+strconv.Itoa(n)+".sh"))
		if err != nil {
			return specs
		}
		for _, f := range strings.Fields(string(data)) {
			if s, ok := strings.CutPrefix(f, "--array="); ok {
				specs = append(specs, s)
			}
		}
	}
}

// TestSlurmMatchesLocal runs a 12-trial sweep as one Slurm job array with
// a %2 throttle and checks its tables equal the local executor's, bit for bit.
func TestSlurmMatchesLocal(t *testing.T) {
	needSlurm(t)
	tmp, local, slurm := slurmSetup(t)
	localDir := runLocal(t, local, filepath.Join(tmp, "local"))

	sum, err := runOnSlurm(t, context.Background(), slurm, filepath.Join(tmp, "slurm"))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts[results.StatusOK] != 12 {
		t.Fatalf("slurm statuses %v, want 12 ok", sum.Counts)
	}
	if got := arrays(t, sum.Dir); len(got) != 1 || got[0] != "0-11%2" {
		t.Errorf("submitted arrays %q, want one array 0-11%%2", got)
	}
	for _, r := range sameMetrics(t, localDir, sum.Dir) {
		if r.Attempts != 1 {
			t.Errorf("trial %d: %d attempts, want 1", r.Index, r.Attempts)
		}
	}
}

// TestSlurmFaults cancels one array task with scancel while it runs and
// makes another fail once: both are resubmitted and every trial ends ok,
// with the local executor's metrics.
func TestSlurmFaults(t *testing.T) {
	needSlurm(t)
	tmp, local, slurm := slurmSetup(t)
	localDir := runLocal(t, local, filepath.Join(tmp, "local"))

	faults := filepath.Join(tmp, "faults")
	if err := os.MkdirAll(faults, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(slurmFaultsEnv, faults)
	const failed, cancelled = 3, 6
	for _, f := range []string{fmt.Sprintf("fail-%d", failed), fmt.Sprintf("hold-%d", cancelled)} {
		if err := os.WriteFile(filepath.Join(faults, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	type result struct {
		sum runner.Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := runOnSlurm(t, ctx, slurm, filepath.Join(tmp, "slurm"))
		done <- result{sum, err}
	}()

	// Cancel the held task once it runs.
	running := filepath.Join(faults, fmt.Sprintf("running-%d", cancelled))
	var job []byte
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var err error
		if job, err = os.ReadFile(running); err == nil && len(job) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the held trial never ran")
		}
	}
	if out, err := exec.Command("scancel", string(job)).CombinedOutput(); err != nil {
		t.Fatalf("scancel %s: %v: %s", job, err, out)
	}
	t.Logf("cancelled task %s", job)

	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.sum.Counts[results.StatusOK] != 12 {
		t.Fatalf("statuses %v, want 12 ok", res.sum.Counts)
	}
	specs := arrays(t, res.sum.Dir)
	if len(specs) < 2 || specs[0] != "0-11%2" {
		t.Errorf("submitted arrays %q, want 0-11%%2 and then resubmissions", specs)
	}
	rows := sameMetrics(t, localDir, res.sum.Dir)
	for _, r := range rows {
		want := int64(1)
		if r.Index == failed || r.Index == cancelled {
			want = 2
		}
		if r.Attempts != want {
			t.Errorf("trial %d: %d attempts, want %d", r.Index, r.Attempts, want)
		}
	}
}
