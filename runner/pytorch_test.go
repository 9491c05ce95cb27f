package runner_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"peftbench/catalog"
	"peftbench/export"
	"peftbench/results"
	"peftbench/runner"
	"peftbench/sweeps"
	"peftbench/tasks"
	"peftbench/train"
)

// asBench makes the test binary stand in for `bench export` when the
// reference trainer calls back ($PEFTBENCH_BENCH = this binary), so the
// test needs no bench build. It runs before testing parses any flag.
const asBench = "PEFTBENCH_TEST_AS_BENCH"

func init() {
	if os.Getenv(asBench) != "1" {
		return
	}
	os.Exit(benchExport(os.Args[1:]))
}

func benchExport(args []string) int {
	if len(args) == 0 || args[0] != "export" {
		fmt.Fprintf(os.Stderr, "test bench: want export, got %q\n", args)
		return 2
	}
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	trial := fs.String("trial", "", "")
	out := fs.String("out", "", "")
	dataOnly := fs.Bool("data-only", false, "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	dir, err := tasks.DefaultCacheDir()
	if err == nil {
		var c *tasks.Cache
		if c, err = tasks.NewCache(dir); err == nil {
			_, err = export.FromTrial(context.Background(), *trial, c, *out, export.Options{DataOnly: *dataOnly})
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// torchPython returns the interpreter with PyTorch (PEFTBENCH_PYTHON, else
// /usr/bin/python3) or skips the test.
func torchPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv("PEFTBENCH_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	if out, err := exec.Command(py, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("no PyTorch trainer check: %s cannot import torch (%v: %s); set PEFTBENCH_PYTHON", py, err, bytes.TrimSpace(out))
	}
	return py
}

// pytorchSweep is the acceptance sweep: lora, dora and full on teacher-shift
// and on mnist-split (whose task-incremental scoring restricts the logits
// each evaluation set competes over), trained by the trainer table given.
const pytorchSweep = `name = %q
seeds = [3]

[grid]
method = ["lora", "dora", "full"]
rank = [4]
task = ["teacher-shift", "mnist-split"]

[defaults]
steps = 60
batch = 32
lr = 1e-2
optimizer = "adamw"
weight_decay = 0.01
schedule = "cosine"
warmup = 5
grad_clip = 1.0
eval_every = 20
targets = ["fc1", "fc2", "head"]

[task.teacher-shift]
pretrain_steps = 200
eval_size = 1024

[task.mnist-split]
hidden = 32

[method.full]
lr = 1e-3

[resources]
workers = 2
timeout = "5m"
%s`

// TestPyTorchTrainerAgrees runs lora, dora and full on teacher-shift through
// runner.Run twice, once on the builtin engine and once on the reference
// PyTorch trainer (trainers/pytorch/train.py, a real Command trainer fed
// by bench export), and checks that the final metrics agree.
//
// Both sides compute in float32 from the same base weights, batches,
// initial factors and learning rates, so the differences are rounding
// only: losses and forgetting agree to 1e-4 relative (measured after 60
// AdamW steps: |Δ| ≤ 1e-7, under 1e-7 relative), accuracies to two
// evaluation rows in 1024 (an argmax near a tie may flip; measured: equal).
func TestPyTorchTrainerAgrees(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two trials twice and starts Python; skipped with -short")
	}
	py := torchPython(t)
	script, err := filepath.Abs(filepath.Join("..", "trainers", "pytorch", "train.py"))
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	cacheDir := filepath.Join(tmp, "cache")
	t.Setenv(tasks.CacheEnv, cacheDir) // the trainer's bench export inherits it
	cache, err := tasks.NewCache(cacheDir)
	if err != nil {
		t.Fatal(err)
	}

	load := func(name, trainer string) *sweeps.Plan {
		path := filepath.Join(tmp, name+".toml")
		if err := os.WriteFile(path, []byte(fmt.Sprintf(pytorchSweep, name, trainer)), 0o644); err != nil {
			t.Fatal(err)
		}
		plan, err := sweeps.Load(path, catalog.Registries{})
		if err != nil {
			t.Fatal(err)
		}
		return plan
	}
	command := fmt.Sprintf(`
[trainer]
kind = "command"
command = [%q, %q]
env = { %s = "1", PEFTBENCH_BENCH = %q }
`, py, script, asBench, self)
	builtinPlan := load("builtin", "")
	torchPlan := load("pytorch", command)
	if torchPlan.Trainer.Kind != "command" {
		t.Fatalf("trainer kind %q, want command", torchPlan.Trainer.Kind)
	}

	run := func(plan *sweeps.Plan, tr runner.Trainer) map[string]results.TrialRow {
		opts := runner.Options{Out: filepath.Join(tmp, "results"), Trainer: tr, CPUs: min(2, runtime.NumCPU()),
			Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
		sum, err := runner.Run(context.Background(), plan, opts)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := results.ReadTrials(filepath.Join(sum.Dir, "trials.parquet"))
		if err != nil {
			t.Fatal(err)
		}
		byMethod := map[string]results.TrialRow{}
		for _, r := range rows {
			if r.Status != results.StatusOK {
				log, _ := os.ReadFile(filepath.Join(results.ShardDir(sum.Dir, r.TrialID), "stderr.log"))
				t.Fatalf("%s %s: status %s: %s\n%s", plan.Name, r.Method, r.Status, r.Error, log)
			}
			byMethod[r.Method] = r
		}
		return byMethod
	}
	want := run(builtinPlan, runner.Builtin{T: &train.Trainer{Cache: cache}})
	got := run(torchPlan, nil)

	for _, method := range []string{"lora", "dora", "full"} {
		b, p := want[method], got[method]
		for _, m := range []struct {
			name       string
			b, p       float64
			rel, abs   float64
			isAccuracy bool
		}{
			{"target_loss", b.TargetLoss, p.TargetLoss, 1e-4, 0, false},
			{"retain_loss_after", b.RetainLossAfter, p.RetainLossAfter, 1e-4, 0, false},
			{"retain_loss_before", b.RetainLossBefore, p.RetainLossBefore, 1e-5, 0, false},
			{"forgetting", b.Forgetting, p.Forgetting, 1e-3, 1e-6, false},
			{"target_metric", b.TargetMetric, p.TargetMetric, 0, 2.0 / 1024, true},
			{"retain_metric_after", b.RetainMetricAfter, p.RetainMetricAfter, 0, 2.0 / 1024, true},
			{"trainable_params", float64(b.TrainableParams), float64(p.TrainableParams), 0, 0, false},
		} {
			d := math.Abs(m.b - m.p)
			t.Logf("%s %-20s builtin %.7g  pytorch %.7g  |Δ| %.2g", method, m.name, m.b, m.p, d)
			if math.IsNaN(m.b) || math.IsNaN(m.p) || d > m.abs+m.rel*math.Abs(m.b) {
				t.Errorf("%s %s: builtin %v, pytorch %v: differ by %.3g (tolerance %g relative + %g)", method, m.name, m.b, m.p, d, m.rel, m.abs)
			}
		}
		if p.Steps != 60 {
			t.Errorf("%s: pytorch steps = %d, want 60", method, p.Steps)
		}
	}
}
