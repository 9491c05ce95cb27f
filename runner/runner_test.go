package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// testPlan returns a plan of n trials over three methods.
func testPlan(name string, n int) *sweeps.Plan {
	p := &sweeps.Plan{
		Name: name, File: "testdata/" + name + ".toml",
		Source: "name = \"" + name + "\"\n", SourceHash: "hash-" + name,
	}
	methods := []string{"lora", "dora", "full"}
	for i := range n {
		m := methods[i%3]
		rank := 4
		if m == "full" {
			rank = 0
		}
		p.Trials = append(p.Trials, sweeps.Trial{
			Sweep: name, ID: fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15), Index: i,
			Method: m, Rank: rank, Task: "toy", Seed: int64(i / 3),
			MethodOptions: map[string]any{"alpha": float64(2 * rank)},
			Train:         sweeps.TrainConfig{Steps: 5, Batch: 8, LR: 1e-3, Optimizer: "adamw", Schedule: "constant"},
		})
	}
	return p
}

// fixedClock makes tables byte-identical across runs.
func fixedClock() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// trainerFunc adapts a function to Trainer.
type trainerFunc func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error

func (f trainerFunc) Run(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
	return f(ctx, t, dir, r)
}

// toyLoss is a deterministic loss curve for a trial.
func toyLoss(t sweeps.Trial, step int) float64 {
	return 1/float64(step) + float64(t.Seed)*1e-3 + float64(t.Index)*1e-4
}

// toy trains deterministically: Steps steps of loss, then final metrics.
func toy(ctx context.Context, t sweeps.Trial, _ string, r Reporter) error {
	for step := 1; step <= t.Train.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.Step(step, "train", "loss", toyLoss(t, step))
	}
	toySummary(t, r)
	return nil
}

// toySummary reports toy's final metrics.
func toySummary(t sweeps.Trial, r Reporter) {
	r.Summary("target_loss", toyLoss(t, t.Train.Steps))
	r.Summary("target_metric", 1-toyLoss(t, t.Train.Steps)/2)
	r.Summary("trainable_params", float64(100*t.Rank+1))
}

// counter counts trainer runs per trial ID.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) wrap(f trainerFunc) trainerFunc {
	return func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
		c.mu.Lock()
		if c.n == nil {
			c.n = map[string]int{}
		}
		c.n[t.ID]++
		c.mu.Unlock()
		return f(ctx, t, dir, r)
	}
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := 0
	for _, v := range c.n {
		s += v
	}
	return s
}

func (c *counter) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

func testOptions(t testing.TB, tr Trainer) Options {
	return Options{
		Out: t.TempDir(), Workers: 2, Trainer: tr, CPUs: 4, Now: fixedClock,
		Backoff: func(int) time.Duration { return time.Millisecond },
		Grace:   5 * time.Second,
	}
}

func shards(t *testing.T, dir string) map[string]*results.Shard {
	t.Helper()
	s, err := results.ReadShards(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunWritesTables(t *testing.T) {
	plan := testPlan("ok", 6)
	var threads atomic.Int64
	opts := testOptions(t, trainerFunc(func(ctx context.Context, tr sweeps.Trial, dir string, r Reporter) error {
		threads.Store(int64(tr.Train.Threads))
		return toy(ctx, tr, dir, r)
	}))
	var events []Event
	opts.Events = func(ev Event) { events = append(events, ev) }
	sum, err := Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts[results.StatusOK] != 6 || sum.Skipped != 0 || sum.Total != 6 {
		t.Fatalf("summary = %+v, want 6 ok", sum)
	}
	if got := threads.Load(); got != 2 {
		t.Errorf("threads per trial = %d, want 4 CPUs / 2 workers = 2", got)
	}
	rows, err := results.ReadTrials(filepath.Join(sum.Dir, "trials.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 {
		t.Fatalf("trials.parquet has %d rows, want 6", len(rows))
	}
	for i, row := range rows {
		tr := plan.Trials[i]
		if row.TrialID != tr.ID || row.Index != int64(i) || row.Status != results.StatusOK || row.Attempts != 1 {
			t.Errorf("row %d = %s #%d %s attempts %d, want %s #%d ok attempts 1", i, row.TrialID, row.Index, row.Status, row.Attempts, tr.ID, i)
		}
		if want := toyLoss(tr, 5); row.TargetLoss != want {
			t.Errorf("row %d target_loss = %v, want %v", i, row.TargetLoss, want)
		}
		if !math.IsNaN(row.Forgetting) {
			t.Errorf("row %d forgetting = %v, want NaN (not reported)", i, row.Forgetting)
		}
		if row.Steps != 5 || row.Sweep != "ok" || !strings.Contains(row.Config, `"method":"`+tr.Method+`"`) {
			t.Errorf("row %d: steps %d sweep %q config %s", i, row.Steps, row.Sweep, row.Config)
		}
	}
	steps, err := results.ReadSteps(filepath.Join(sum.Dir, "steps.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 30 {
		t.Errorf("steps.parquet has %d rows, want 30", len(steps))
	}
	if _, err := os.Stat(filepath.Join(sum.Dir, "spectra.parquet")); err != nil {
		t.Error(err)
	}
	m, err := results.ReadManifest(sum.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.SourceHash != plan.SourceHash || m.SweepSource != plan.Source || m.GoVersion == "" || m.Ended.IsZero() || !strings.Contains(string(m.Trials), plan.Trials[5].ID) {
		t.Errorf("manifest = %+v", m)
	}

	if events[0].Type != EventSweepStarted || events[len(events)-1].Type != EventSweepFinished {
		t.Errorf("events start %s end %s", events[0].Type, events[len(events)-1].Type)
	}
	if p := events[len(events)-1].Progress; p.OK != 6 || p.Done != 6 || p.Running != 0 {
		t.Errorf("final progress = %+v", p)
	}
}

func TestStatuses(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name     string
		timeout  time.Duration
		retries  int
		failures int // failed attempts before the trial succeeds
		trainer  func(calls int) trainerFunc
		status   string
		errHas   string
		attempts int64
		calls    int
		divStep  int64
	}{
		{"nan loss", 0, 2, 0, func(int) trainerFunc {
			return func(ctx context.Context, t sweeps.Trial, _ string, r Reporter) error {
				for step := 1; ; step++ { // planted NaN at step 7; keeps going until stopped
					v := 1.0
					if step >= 7 {
						v = math.NaN()
					}
					r.Step(step, "train", "loss", v)
					if ctx.Err() != nil {
						return ctx.Err()
					}
				}
			}
		}, results.StatusDiverged, "step 7", 1, 1, 7},
		{"diverged error", 0, 2, 0, func(int) trainerFunc {
			return func(ctx context.Context, t sweeps.Trial, _ string, r Reporter) error {
				return fmt.Errorf("train: %w", &DivergedError{Step: 5, Tensor: "grad lora_A"})
			}
		}, results.StatusDiverged, "non-finite grad lora_A", 1, 1, 5},
		{"inf eval loss", 0, 0, 0, func(int) trainerFunc {
			return func(ctx context.Context, t sweeps.Trial, _ string, r Reporter) error {
				r.Step(3, "eval", "loss", math.Inf(1))
				<-ctx.Done()
				return ctx.Err()
			}
		}, results.StatusDiverged, "eval loss", 1, 1, 3},
		{"timeout", 30 * time.Millisecond, 2, 0, func(int) trainerFunc {
			return func(ctx context.Context, t sweeps.Trial, _ string, r Reporter) error {
				<-ctx.Done()
				return ctx.Err()
			}
		}, results.StatusTimeout, "timed out after 30ms", 1, 1, 0},
		{"retried then ok", 0, 2, 2, nil, results.StatusOK, "", 3, 3, 0},
		{"retries exhausted", 0, 1, 5, nil, results.StatusFailed, "boom", 2, 2, 0},
		{"no retries", 0, 0, 5, nil, results.StatusFailed, "boom", 1, 1, 0},
		{"panic", 0, 0, 0, func(int) trainerFunc {
			return func(ctx context.Context, t sweeps.Trial, _ string, r Reporter) error { panic("index out of range") }
		}, results.StatusFailed, "trainer panicked: index out of range", 1, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := testPlan("s", 4)
			plan.Resources.Timeout = tc.timeout
			plan.Resources.Retries = tc.retries
			target := plan.Trials[2].ID
			var c counter
			var bad trainerFunc
			if tc.trainer != nil {
				bad = tc.trainer(0)
			} else {
				bad = func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
					if c.get(t.ID) <= tc.failures {
						r.Step(1, "train", "loss", 2) // dropped: each attempt starts afresh
						return boom
					}
					return toy(ctx, t, dir, r)
				}
			}
			var backoffs []int
			var bmu sync.Mutex
			opts := testOptions(t, c.wrap(func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
				if t.ID == target {
					return bad(ctx, t, dir, r)
				}
				return toy(ctx, t, dir, r)
			}))
			opts.Backoff = func(a int) time.Duration {
				bmu.Lock()
				backoffs = append(backoffs, a)
				bmu.Unlock()
				return time.Millisecond
			}
			sum, err := Run(context.Background(), plan, opts)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Counts[results.StatusOK] < 3 {
				t.Errorf("counts = %v, want the 3 other trials ok", sum.Counts)
			}
			s := shards(t, sum.Dir)[target]
			if s.Trial.Status != tc.status || !strings.Contains(s.Trial.Error, tc.errHas) ||
				s.Trial.Attempts != tc.attempts || s.Trial.DivergedStep != tc.divStep {
				t.Errorf("trial = %s %q attempts %d step %d, want %s %q attempts %d step %d",
					s.Trial.Status, s.Trial.Error, s.Trial.Attempts, s.Trial.DivergedStep, tc.status, tc.errHas, tc.attempts, tc.divStep)
			}
			if got := c.get(target); got != tc.calls {
				t.Errorf("trainer ran %d times, want %d", got, tc.calls)
			}
			if len(backoffs) != int(tc.attempts)-1 {
				t.Errorf("backoffs = %v, want one per retry", backoffs)
			}
			for i, a := range backoffs {
				if a != i+1 {
					t.Errorf("backoff %d for attempt %d, want %d", i, a, i+1)
				}
			}
			if tc.status == results.StatusOK && len(s.Steps) != 5 {
				t.Errorf("ok after retries kept %d step rows, want the last attempt's 5", len(s.Steps))
			}
		})
	}
}

func TestDefaultBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {7, time.Minute}, {30, time.Minute}} {
		if got := defaultBackoff(tc.attempt); got != tc.want {
			t.Errorf("defaultBackoff(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
}

func TestResume(t *testing.T) {
	plan := testPlan("resume", 6)
	failing := plan.Trials[4].ID
	var c counter
	fail := true
	opts := testOptions(t, c.wrap(func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
		if t.ID == failing && fail {
			return errors.New("flaky")
		}
		if t.Index == 5 {
			return &DivergedError{Step: 2}
		}
		return toy(ctx, t, dir, r)
	}))
	if _, err := Run(context.Background(), plan, opts); err != nil {
		t.Fatal(err)
	}
	if c.total() != 6 {
		t.Fatalf("first run: %d trainer runs, want 6", c.total())
	}
	fail = false
	sum, err := Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Ok and diverged trials are skipped; the failed one runs again.
	if c.total() != 7 || c.get(failing) != 2 || sum.Skipped != 5 {
		t.Errorf("rerun: %d runs (failed trial %d), skipped %d; want 7 runs, 2, 5 skipped", c.total(), c.get(failing), sum.Skipped)
	}
	if sum.Counts[results.StatusOK] != 5 || sum.Counts[results.StatusDiverged] != 1 {
		t.Errorf("counts = %v", sum.Counts)
	}
	rows, err := results.ReadTrials(filepath.Join(sum.Dir, "trials.parquet"))
	if err != nil || len(rows) != 6 || rows[4].Status != results.StatusOK {
		t.Errorf("trials.parquet after resume: %d rows, err %v", len(rows), err)
	}
}

func TestChangedSweepRefused(t *testing.T) {
	plan := testPlan("changed", 4)
	var c counter
	opts := testOptions(t, c.wrap(toy))
	if _, err := Run(context.Background(), plan, opts); err != nil {
		t.Fatal(err)
	}
	changed := testPlan("changed", 3) // one trial dropped
	changed.Source += "# edited\n"
	changed.SourceHash = "hash-edited"
	_, err := Run(context.Background(), changed, opts)
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("changed sweep: err = %v, want a refusal naming --force", err)
	}
	if c.total() != 4 {
		t.Fatalf("refused run ran trials")
	}
	opts.Force = true
	sum, err := Run(context.Background(), changed, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.total() != 4 || sum.Skipped != 3 {
		t.Errorf("forced rerun: %d runs, %d skipped; want the 3 kept trials skipped", c.total(), sum.Skipped)
	}
	if _, err := os.Stat(results.ShardDir(sum.Dir, plan.Trials[3].ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale trial folder kept: %v", err)
	}
	m, err := results.ReadManifest(sum.Dir)
	if err != nil || m.SourceHash != "hash-edited" {
		t.Errorf("manifest hash = %v, %v", m, err)
	}
	rows, err := results.ReadTrials(filepath.Join(sum.Dir, "trials.parquet"))
	if err != nil || len(rows) != 3 {
		t.Errorf("trials.parquet: %d rows, %v; want 3", len(rows), err)
	}
}

func TestCancel(t *testing.T) {
	plan := testPlan("cancel", 6)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c counter
	var interrupted atomic.Bool
	opts := testOptions(t, c.wrap(func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
		if t.Index == 1 && !interrupted.Swap(true) {
			r.Step(1, "train", "loss", 1)
			cancel() // Ctrl-C while this trial runs
			<-ctx.Done()
			return ctx.Err()
		}
		return toy(ctx, t, dir, r)
	}))
	opts.Workers = 1
	sum, err := Run(ctx, plan, opts)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "rerun to resume") {
		t.Fatalf("err = %v, want context.Canceled with advice", err)
	}
	got := shards(t, sum.Dir)
	if len(got) != 2 || got[plan.Trials[0].ID].Trial.Status != results.StatusOK || got[plan.Trials[1].ID].Trial.Status != results.StatusCancelled {
		t.Fatalf("after cancel: %d shards, want trial 0 ok and trial 1 cancelled", len(got))
	}
	rows, err := results.ReadTrials(filepath.Join(sum.Dir, "trials.parquet"))
	if err != nil || len(rows) != 2 {
		t.Fatalf("trials.parquet after cancel: %d rows, %v", len(rows), err)
	}
	sum, err = Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Skipped != 1 || sum.Counts[results.StatusOK] != 6 || c.total() != 2+5 {
		t.Errorf("resume after cancel: skipped %d, counts %v, runs %d", sum.Skipped, sum.Counts, c.total())
	}
}

func TestInvalidBeforeCreating(t *testing.T) {
	dup := testPlan("dup", 2)
	dup.Trials[1].ID = dup.Trials[0].ID
	slurm := testPlan("slurm", 2)
	slurm.Executor.Kind = "slurm"
	gpus := testPlan("gpus", 2)
	gpus.Resources.GPUs, gpus.Resources.GPUsPerTrial = []string{"0"}, 2
	cmd := testPlan("cmd", 2)
	cmd.Trainer = sweeps.TrainerSpec{Kind: "command", Command: []string{"./no-such-trainer"}}
	tests := []struct {
		name    string
		plan    *sweeps.Plan
		trainer Trainer
		errHas  string
	}{
		{"empty", &sweeps.Plan{Name: "empty"}, trainerFunc(toy), "no trials"},
		{"bad name", testPlan("../up", 1), trainerFunc(toy), "cannot name"},
		{"duplicate IDs", dup, trainerFunc(toy), "share the ID"},
		{"no trainer", testPlan("none", 1), nil, "no builtin trainer"},
		{"slurm", slurm, trainerFunc(toy), "executor \"slurm\""},
		{"gpus per trial", gpus, trainerFunc(toy), "gpus_per_trial = 2"},
		{"missing command", cmd, nil, "no-such-trainer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(t, tc.trainer)
			opts.Out = filepath.Join(opts.Out, "results")
			_, err := Run(context.Background(), tc.plan, opts)
			if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.HasPrefix(err.Error(), "runner: ") {
				t.Errorf("err = %v, want runner: …%s…", err, tc.errHas)
			}
			if _, err := os.Stat(opts.Out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("results folder created for an invalid plan")
			}
		})
	}
}

// TestGPUSlots runs 9 trials on 3 GPUs found by a fake nvidia-smi: no GPU
// ever holds two trials, every trial ran, and each saw only its own device.
func TestGPUSlots(t *testing.T) {
	bin := t.TempDir()
	writeScript(t, filepath.Join(bin, "nvidia-smi"), `
[ "$1" = "--query-gpu=index" ] && [ "$2" = "--format=csv,noheader" ] || { echo "bad args: $*" >&2; exit 2; }
printf '0\n1\n2\n'
`)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	plan := testPlan("gpus", 9)
	plan.Resources.GPUsAuto = true
	var (
		mu       sync.Mutex
		busy     = map[string]bool{}
		seen     = map[string][]string{}
		overlaps int
		maxBusy  int
	)
	opts := testOptions(t, trainerFunc(func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
		devs := Devices(ctx)
		mu.Lock()
		seen[t.ID] = devs
		for _, d := range devs {
			if busy[d] {
				overlaps++
			}
			busy[d] = true
		}
		maxBusy = max(maxBusy, len(busy))
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		for _, d := range devs {
			delete(busy, d)
		}
		mu.Unlock()
		return toy(ctx, t, dir, r)
	}))
	opts.Workers = 9 // capped to the 3 GPU slots
	sum, err := Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts[results.StatusOK] != 9 || len(seen) != 9 {
		t.Fatalf("%d ok, %d trials ran; want 9", sum.Counts[results.StatusOK], len(seen))
	}
	if overlaps != 0 {
		t.Errorf("%d times a GPU held two trials", overlaps)
	}
	if maxBusy < 2 {
		t.Errorf("at most %d GPUs busy at once; want trials spread over the GPUs", maxBusy)
	}
	for id, d := range seen {
		if len(d) != 1 || !strings.Contains("012", d[0]) {
			t.Errorf("trial %s saw devices %v, want one of 0, 1, 2", id, d)
		}
	}
}

// TestGPUSlotsCommand checks the same through the external trainer: each
// process sees CUDA_VISIBLE_DEVICES, and holds its GPU alone (a lock
// directory per GPU that a second holder could not create).
func TestGPUSlotsCommand(t *testing.T) {
	dir := t.TempDir()
	locks := filepath.Join(dir, "locks")
	if err := os.Mkdir(locks, 0o755); err != nil {
		t.Fatal(err)
	}
	trainer := filepath.Join(dir, "trainer.sh")
	writeScript(t, trainer, `
mkdir "$LOCKS/gpu$CUDA_VISIBLE_DEVICES" || { echo "GPU $CUDA_VISIBLE_DEVICES busy" >&2; exit 1; }
echo "$CUDA_VISIBLE_DEVICES" > "$PEFTBENCH_OUT/devices.txt"
sleep 0.05
rmdir "$LOCKS/gpu$CUDA_VISIBLE_DEVICES"
echo '{"type":"summary","metrics":{"target_loss":0.5}}'
`)
	plan := testPlan("gpucmd", 9)
	plan.Resources.GPUs = []string{"0", "1", "2", "3", "4", "5"}
	plan.Resources.GPUsPerTrial = 2
	plan.Trainer = sweeps.TrainerSpec{Kind: "command", Command: []string{trainer}, Env: map[string]string{"LOCKS": locks}}
	opts := testOptions(t, nil)
	opts.Workers = 9
	sum, err := Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts[results.StatusOK] != 9 {
		for _, s := range shards(t, sum.Dir) {
			t.Log(s.Trial.Status, s.Trial.Error)
		}
		t.Fatalf("counts = %v, want 9 ok", sum.Counts)
	}
	for _, tr := range plan.Trials {
		b, err := os.ReadFile(filepath.Join(results.ShardDir(sum.Dir, tr.ID), "devices.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != "0,1" && got != "2,3" && got != "4,5" {
			t.Errorf("trial %s: CUDA_VISIBLE_DEVICES = %q, want one slot of two GPUs", tr.ID, got)
		}
	}
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestEventSinks(t *testing.T) {
	plan := testPlan("events", 3)
	for _, tc := range []struct {
		name string
		sink func(*strings.Builder) func(Event)
		want []string
	}{
		{"json", func(b *strings.Builder) func(Event) { return NewJSON(b) },
			[]string{`"type":"sweep_started"`, `"type":"trial_finished"`, `"status":"failed"`, `"type":"sweep_finished"`, `"ok":2`}},
		{"lines", func(b *strings.Builder) func(Event) { return NewLines(b) },
			[]string{"sweep events: 3 trials", "[3/3]", "failed", "full toy seed=0", ": nope", "2 ok, 1 failed"}},
		{"bar", func(b *strings.Builder) func(Event) { return NewBar(b).Event },
			[]string{"\r\x1b[K[", "ok 2  failed 1", "ETA", "failed    ", "nope", "sweep events: 2 ok, 1 failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			opts := testOptions(t, trainerFunc(func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
				if t.Method == "full" {
					return errors.New("nope")
				}
				return toy(ctx, t, dir, r)
			}))
			opts.Events = tc.sink(&b)
			if _, err := Run(context.Background(), plan, opts); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}
