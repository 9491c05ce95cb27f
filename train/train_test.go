package train_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"peftbench/analysis"
	"peftbench/methods"
	"peftbench/safetensors"
	"peftbench/sweeps"
	"peftbench/tasks"
	"peftbench/train"
	"peftbench/trainer"
)

// cache is shared by the package's tests so each base model pretrains once.
var cache *tasks.Cache

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "train-cache-")
	if err != nil {
		panic(err)
	}
	if cache, err = tasks.NewCache(dir); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// recorder is a Reporter that keeps everything.
type recorder struct {
	mu        sync.Mutex
	steps     []string
	values    map[string][]float64 // by split/metric, in step order
	summary   map[string]float64
	artifacts map[string]string
}

func (r *recorder) Step(step int, split, metric string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := split + "/" + metric
	r.steps = append(r.steps, k)
	if r.values == nil {
		r.values = map[string][]float64{}
	}
	r.values[k] = append(r.values[k], v)
}

func (r *recorder) Summary(name string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.summary == nil {
		r.summary = map[string]float64{}
	}
	r.summary[name] = v
}

func (r *recorder) Artifact(name, path string) {
	if r.artifacts == nil {
		r.artifacts = map[string]string{}
	}
	r.artifacts[name] = path
}

func (r *recorder) Log(string) {}

// teacherShift is a small, fast trial config.
func teacherShift(method string, opts map[string]any) train.Config {
	taskOpts, err := tasks.ResolveOptions("teacher-shift", map[string]any{"pretrain_steps": 300, "eval_size": 512})
	if err != nil {
		panic(err)
	}
	mo, err := methods.ResolveOptions(method, 0, opts)
	if err != nil {
		panic(err)
	}
	return train.Config{
		Method: method, MethodOptions: mo,
		Task: "teacher-shift", TaskOptions: taskOpts,
		Seed: 1, Steps: 40, Batch: 32, LR: 3e-3, Optimizer: "adamw",
		Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Schedule: "cosine", Warmup: 4, GradClip: 1, EvalEvery: 20,
	}
}

// modArith is a small, fast trial config on a transformer task, for
// methods that need one (LN tuning tunes norm layers).
func modArith(method string, opts map[string]any) train.Config {
	cfg := teacherShift(method, opts)
	taskOpts, err := tasks.ResolveOptions("modarith", map[string]any{"p": 7, "dim": 16, "pretrain_steps": 200})
	if err != nil {
		panic(err)
	}
	cfg.Task, cfg.TaskOptions, cfg.LR = "modarith", taskOpts, 1e-2
	return cfg
}

func run(t *testing.T, cfg train.Config) (*recorder, string, error) {
	t.Helper()
	dir := t.TempDir()
	rec := &recorder{}
	err := (&train.Trainer{Cache: cache}).Run(context.Background(), cfg, dir, rec)
	return rec, dir, err
}

func TestRunReports(t *testing.T) {
	rec, dir, err := run(t, teacherShift("lora", map[string]any{"rank": 4, "alpha": 8}))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		"target_loss", "target_metric", "target_metric_before", "retain_loss_before", "retain_loss_after",
		"retain_metric_before", "retain_metric_after", "forgetting", "forgetting_ce",
		"trainable_params", "total_params", "steps", "peak_mem_bytes",
	} {
		if _, ok := rec.summary[k]; !ok {
			t.Errorf("summary lacks %s", k)
		}
	}
	if got, want := rec.summary["steps"], 40.0; got != want {
		t.Errorf("steps = %v, want %v", got, want)
	}
	// LoRA r=4 on 16-64-64-5: 4·(16+64) + 4·(64+64) + 4·(64+5).
	if got, want := rec.summary["trainable_params"], float64(4*(16+64)+4*(64+64)+4*(64+5)); got != want {
		t.Errorf("trainable_params = %v, want %v", got, want)
	}
	// total = the base MLP's weights and biases + LoRA's trainable factors.
	base := float64(64*16 + 64 + 64*64 + 64 + 5*64 + 5)
	if got, want := rec.summary["total_params"], base+rec.summary["trainable_params"]; got != want {
		t.Errorf("total_params = %v, want %v (base %v + trainable)", got, want, base)
	}
	if f := rec.summary["forgetting"]; !(f > 0) {
		t.Errorf("forgetting = %v after fine-tuning, want > 0", f)
	}
	if rec.summary["target_loss"] >= rec.summary["target_loss_before"] {
		t.Errorf("target loss %v did not fall below the base's %v", rec.summary["target_loss"], rec.summary["target_loss_before"])
	}
	if rec.artifacts["weights"] != train.WeightsFile {
		t.Errorf("artifacts = %v", rec.artifacts)
	}
	if _, err := os.Stat(filepath.Join(dir, train.WeightsFile)); err != nil {
		t.Error(err)
	}
	want := map[string]bool{"train/loss": true, "target/accuracy": true, "retain/loss": true}
	for _, s := range rec.steps {
		delete(want, s)
	}
	if len(want) > 0 {
		t.Errorf("step metrics missing: %v", want)
	}
}

// TestDeterministic runs one config twice: metrics and weights must be
// bit-identical.
func TestDeterministic(t *testing.T) {
	cfg := teacherShift("dora", map[string]any{"rank": 4, "dropout": 0.1})
	a, da, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, db, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range a.summary {
		if train.IsTiming(k) {
			continue // wall times vary; peak_mem_bytes does not
		}
		if w := b.summary[k]; math.Float64bits(v) != math.Float64bits(w) {
			t.Errorf("%s: %v then %v", k, v, w)
		}
	}
	wa, _ := os.ReadFile(filepath.Join(da, train.WeightsFile))
	wb, _ := os.ReadFile(filepath.Join(db, train.WeightsFile))
	if !bytes.Equal(wa, wb) {
		t.Error("weights differ between two runs of one config")
	}
}

func TestDiverged(t *testing.T) {
	cfg := teacherShift("full", nil)
	cfg.LR, cfg.GradClip, cfg.Optimizer = 1e30, 0, "sgd"
	_, _, err := run(t, cfg)
	var d *trainer.DivergedError
	if !errors.As(err, &d) {
		t.Fatalf("err = %v, want a DivergedError", err)
	}
	if d.Step < 0 || d.Step >= cfg.Steps {
		t.Errorf("diverged at step %d of %d", d.Step, cfg.Steps)
	}
}

// TestEveryMethod trains every registered method briefly through the loop,
// hooks included, on the hidden layers (the 5-class head fits few block
// sizes), and checks the target loss falls.
func TestEveryMethod(t *testing.T) {
	names := methods.Names()
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			opts := map[string]any{}
			info, _ := methods.Lookup(name)
			if k := info.Info().RankOptionName(); k != "" {
				opts[k] = 4 // rank 4, a block size of 4
				if k == "n_frequency" {
					opts[k] = 64
				}
			}
			cfg := teacherShift(name, opts)
			cfg.Layers = []string{"fc1", "fc2"}
			if methods.TunesNorms(name) {
				cfg = modArith(name, opts) // teacher-shift's MLP has no norm layers
			}
			if lr := info.Info().LR; lr > 0 {
				cfg.LR = lr // the method's recommended rate (C3A 1e-1, DeLoRA 1e-2)
			}
			if name == "vera" || name == "lora-xs" || name == "adalora" {
				cfg.LR = 1e-2
			}
			rec, _, err := run(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if info.Info().RandomInit != "" {
				// A method whose default init moves the model (FourierFT's
				// N(0,1) spectrum at α = 150 on a 64×16 layer) can start far
				// above the base: it must end below the base or its training
				// loss must fall.
				mean := func(v []float64) float64 {
					var s float64
					for _, x := range v {
						s += x
					}
					return s / float64(len(v))
				}
				tl := rec.values["train/loss"]
				below := rec.summary["target_loss"] < rec.summary["target_loss_before"]
				if f, l := mean(tl[:5]), mean(tl[len(tl)-5:]); !below && !(l < f) {
					t.Errorf("training loss %v over the last 5 steps, %v over the first 5", l, f)
				}
			} else if rec.summary["target_loss"] >= rec.summary["target_loss_before"] {
				t.Errorf("target loss %v did not fall below the base's %v", rec.summary["target_loss"], rec.summary["target_loss_before"])
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*train.Config)
	}{
		{"negative steps", func(c *train.Config) { c.Steps = -1 }},
		{"zero batch", func(c *train.Config) { c.Batch = 0 }},
		{"optimizer", func(c *train.Config) { c.Optimizer = "adam" }},
		{"layer", func(c *train.Config) { c.Layers = []string{"nope"} }},
		{"method", func(c *train.Config) { c.Method = "lroa" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := teacherShift("lora", nil)
			tc.edit(&cfg)
			if _, _, err := run(t, cfg); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestStaged runs a continual task (three stages) with the adapter merged
// between stages and checks every stage is evaluated after the last.
func TestStaged(t *testing.T) {
	for _, merge := range []bool{true, false} {
		cfg := teacherShift("lora", map[string]any{"rank": 4})
		opts, err := tasks.ResolveOptions("teacher-shift", map[string]any{"pretrain_steps": 300, "eval_size": 512, "stages": 3, "merge": merge})
		if err != nil {
			t.Fatal(err)
		}
		cfg.TaskOptions = opts
		cfg.Steps = 20
		rec, _, err := run(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.summary["steps"]; got != 60 {
			t.Errorf("merge=%v: steps = %v, want 60 (3 stages × 20)", merge, got)
		}
		n := 0
		for k := range rec.summary {
			if len(k) > 9 && k[len(k)-9:] == "_accuracy" && k != "target_accuracy" {
				n++
			}
		}
		if n < 3 {
			t.Errorf("merge=%v: %d per-stage accuracies in the summary, want 3: %v", merge, n, rec.summary)
		}
	}
}

// TestLNTuning runs a method that tunes norm layers (LN tuning) through the
// trainer: on a transformer task it trains the norms' copies only (the
// formula's count: the three 16-wide LayerNorms' γ and β) and writes a weights file with no layer (it adapts no linear
// layer), which the spectra analysis reads as empty; on an MLP task it is
// refused naming the task.
func TestLNTuning(t *testing.T) {
	cfg := modArith("ln-tuning", nil)
	cfg.Steps = 10
	rec, dir, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.summary["trainable_params"], float64(3*2*16); got != want {
		t.Errorf("trainable_params = %v, want %v", got, want)
	}
	f, err := safetensors.Open(filepath.Join(dir, train.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.Names()); n != 0 {
		t.Errorf("weights file holds %d tensors, want none", n)
	}
	f.Close()
	layers, err := analysis.ReadLayers(filepath.Join(dir, train.WeightsFile))
	if err != nil || len(layers) != 0 {
		t.Errorf("ReadLayers: %d layers, %v", len(layers), err)
	}

	bad := teacherShift("ln-tuning", nil)
	if _, _, err := run(t, bad); err == nil || !strings.Contains(err.Error(), "no norm layers") {
		t.Errorf("ln-tuning on teacher-shift: %v, want a no-norm-layers error", err)
	}
}

// TestTrialConfigAllLinear checks that all-linear on a builtin transformer
// task still targets every layer it lists, its head included: the builtin
// heads are not marked Output, so their trials stay bit-identical. Planted
// bug caught: a TrialConfig (or all-linear) that drops the head of a
// builtin task.
func TestTrialConfigAllLinear(t *testing.T) {
	opts, err := tasks.ResolveOptions("modarith", map[string]any{"p": 7, "dim": 16})
	if err != nil {
		t.Fatal(err)
	}
	shapes, err := train.Layers("modarith", opts)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range shapes {
		if s.Output {
			t.Errorf("builtin layer %s is marked Output", s.Name)
		}
		want = append(want, s.Name)
	}
	if !slices.Contains(want, "head") {
		t.Fatalf("modarith lists no head: %q", want)
	}
	cfg, err := train.TrialConfig(sweeps.Trial{ID: "x", Method: "lora", Task: "modarith", TaskOptions: opts,
		Train: sweeps.TrainConfig{Targets: []string{sweeps.AllLinear}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Layers, want) {
		t.Errorf("all-linear targets %q, want every layer %q", cfg.Layers, want)
	}
}
