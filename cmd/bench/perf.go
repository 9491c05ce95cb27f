package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"peftbench/kernels"
	"peftbench/methods"
	"peftbench/nn"
)

func init() {
	register(command{
		Name:    "perf",
		Order:   80,
		Summary: "time the builtin engine (SGEMM, training steps) against numpy and PyTorch",
		Run:     runPerf,
	})
}

// perfFigure is one figure of `bench perf --json`; regress.ReadPerf reads
// them back.
type perfFigure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// perfConfig says what runPerf measures and how long.
type perfConfig struct {
	threads     int
	shapes      []kernels.Shape
	gemmTime    time.Duration // minimum time per SGEMM round
	warmup      int           // untimed steps before timing
	steps       int           // timed steps; the figure is their median
	setups      []perfSetup
	ref         bool          // run ci/perf_ref.py
	refQuick    bool          // pass --quick to it
	python      string        // interpreter for ci/perf_ref.py
	refScript   string        // path of ci/perf_ref.py, "" to locate it
	intruders   []int         // sizes n of the n×n intruder-analysis timings
	lm          []lmPerfSetup // LM training steps (--lm)
	lmRefScript string        // path of ci/perf_lm_ref.py, "" to locate it
	lmOnly      bool          // skip ci/perf_ref.py: nothing but the LM steps is timed
}

// perfSetup is one reference training step.
type perfSetup struct {
	name string // "mlp/lora", …
	mk   func() *nn.RefTrainer
}

// perfSetups are the engine issue's reference steps: the MLP 784-256-256-10
// at batch 128 and the transformer (d=128, 2 blocks, 4 heads, seq 64) at
// batch 16, with LoRA r=16 (α=32) on every linear layer or full
// fine-tuning, AdamW; ci/perf_ref.py builds the same models in PyTorch.
func perfSetups() []perfSetup {
	lora := func(l *nn.Linear) {
		l.Adapter = methods.NewLoRA(l, 16, 32, nn.NewRNG(1, "lora."+l.Name))
	}
	full := func(l *nn.Linear) { l.Adapter = methods.NewFull(l) }
	return []perfSetup{
		{"mlp/lora", func() *nn.RefTrainer { return nn.NewRefMLP(nn.RefMLPSizes, 128, 1, lora) }},
		{"mlp/full", func() *nn.RefTrainer { return nn.NewRefMLP(nn.RefMLPSizes, 128, 1, full) }},
		{"transformer/lora", func() *nn.RefTrainer { return nn.NewRefTransformer(nn.RefTransformerConfig, 16, 1, lora) }},
		{"transformer/full", func() *nn.RefTrainer {
			r := nn.NewRefTransformer(nn.RefTransformerConfig, 16, 1, full)
			nn.SetTrainable(r.Model.Params(), true)
			r.Params = nn.AllParams(r.Model)
			return r
		}},
	}
}

// methodSetups are every registered method's training step at its
// defaults on the same two reference setups (every linear its defaults fit
// targeted: all but the MLP's head for AdaLoRA and LoRA-GA), named
// mlp/<method> and transformer/<method>; lora and full keep the rows above
// (LoRA r = 16, compared with PyTorch). A method whose defaults do not fit
// a setup's layers (a layer check fails) is skipped with a note.
func methodSetups(stderr io.Writer) []perfSetup {
	var out []perfSetup
	for _, name := range methods.Names() {
		if name == "lora" || name == "full" {
			continue
		}
		for _, model := range []string{"mlp", "transformer"} {
			mk := func() (*nn.RefTrainer, error) {
				var r *nn.RefTrainer
				if model == "mlp" {
					r = nn.NewRefMLP(nn.RefMLPSizes, 128, 1, nil)
				} else {
					r = nn.NewRefTransformer(nn.RefTransformerConfig, 16, 1, nil)
				}
				// every linear the method's defaults fit (AdaLoRA's initial
				// rank 12 does not fit the MLP's 10-class head)
				o, err := methods.ResolveOptions(name, 0, nil)
				if err != nil {
					return nil, err
				}
				var att methods.Attachment
				if methods.TunesNorms(name) { // LN tuning: the model's norm layers
					if att, err = methods.AttachNormsResolved(name, r.Model.Norms(), o, nn.NewRNG(1, "method")); err != nil {
						return nil, err
					}
				} else {
					var targets []*nn.Linear
					for _, l := range r.Model.Linears() {
						if methods.CheckLayers(name, o, methods.Shapes([]*nn.Linear{l})) == nil {
							targets = append(targets, l)
						}
					}
					if att, err = methods.AttachResolved(name, targets, o, nn.NewRNG(1, "method")); err != nil {
						return nil, err
					}
				}
				if b, ok := att.(methods.BeforeTrainer); ok {
					loss := r.LossFunc()
					if err := b.BeforeTraining(methods.EstimateGrads(func(g *nn.Graph, _ int) *nn.Tensor { return loss(g) })); err != nil {
						return nil, err
					}
				}
				r.Params = att.Params()
				att.SetTraining(nn.NewRNG(1, "dropout"))
				r.HookTotal = 1000
				if h, ok := att.(methods.Regularizer); ok {
					r.Reg = h.Regularizer
				}
				if h, ok := att.(methods.BeforeStepper); ok {
					r.Before = h.BeforeStep
				}
				if h, ok := att.(methods.AfterStepper); ok {
					r.After = h.AfterStep
				}
				return r, nil
			}
			if _, err := mk(); err != nil {
				fmt.Fprintf(stderr, "bench perf: no step/%s/%s: %v\n", model, name, err)
				continue
			}
			out = append(out, perfSetup{model + "/" + name, func() *nn.RefTrainer { r, _ := mk(); return r }})
		}
	}
	return out
}

// loraRatios reports each method's step time over LoRA's on the same
// setup (ratio/lora/step/<model>/<method>, lower is better).
func loraRatios(figs []perfFigure) []perfFigure {
	val := map[string]float64{}
	for _, f := range figs {
		val[f.Name] = f.Value
	}
	var out []perfFigure
	for _, f := range figs {
		rest, ok := strings.CutPrefix(f.Name, "step/")
		model, method, _ := strings.Cut(rest, "/")
		if !ok || method == "lora" {
			continue
		}
		if l := val["step/"+model+"/lora"]; l > 0 {
			out = append(out, perfFigure{"ratio/lora/" + f.Name, round4(f.Value / l), "ratio"})
		}
	}
	return out
}

func runPerf(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("perf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print a JSON array of {name, value, unit} instead of a table")
	quick := fs.Bool("quick", false, "shorter measurements (noisier)")
	threads := fs.Int("threads", runtime.NumCPU(), "goroutines for the engine and threads for numpy/torch")
	noRef := fs.Bool("no-ref", false, "skip the numpy/PyTorch reference (ci/perf_ref.py)")
	noMethods := fs.Bool("no-methods", false, "skip the per-method steps (step/<model>/<method> and their ratios to LoRA)")
	lmOnly := fs.Bool("lm-only", false, "time only the --lm steps (and their PyTorch reference)")
	lmRows := fs.Bool("lm", false, "also time LM LoRA training steps (Pythia-14m- and GPT-2-124M-shaped; minutes on a small machine) against ci/perf_lm_ref.py's PyTorch")
	large := fs.Bool("large", false, "also time the intruder analysis of a 4096×4096 pair (the first run decomposes its base for minutes, then caches it)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench perf [--json] [--quick] [--threads N] [--no-ref] [--no-methods] [--large] [--lm] [--lm-only]")
		fmt.Fprintln(stderr, "\nTimes SGEMM (GFLOP/s at n = 128…1024 and the reference models' shapes) and")
		fmt.Fprintln(stderr, "the reference training steps (ms, median) — LoRA r=16 and full fine-tuning, then")
		fmt.Fprintln(stderr, "every other method at its defaults on the same setups, with its ratio to LoRA's")
		fmt.Fprintln(stderr, "step (ratio/lora/…) — the intruder analysis of a 1024×1024")
		fmt.Fprintln(stderr, "pair (and 4096×4096 with --large; s), and reports peak resident memory.")
		fmt.Fprintln(stderr, "Unless --no-ref, ci/perf_ref.py then times numpy SGEMM, numpy SVD and the same")
		fmt.Fprintln(stderr, "intruder analysis in numpy, and the PyTorch steps, with the same thread count")
		fmt.Fprintln(stderr, "($PEFTBENCH_PYTHON, else /usr/bin/python3), and ratio/… figures compare the")
		fmt.Fprintln(stderr, "two: Go/numpy for GFLOP/s (higher is better), Go/torch for ms and Go/numpy for")
		fmt.Fprintln(stderr, "the intruder seconds, against one SVD (ratio/intruders/…) and against numpy's")
		fmt.Fprintln(stderr, "analysis (ratio/analysis/intruders/…) (lower is better).")
		fmt.Fprintln(stderr, "With --lm (or --lm-only, which times nothing else) it also times LM LoRA training")
		fmt.Fprintln(stderr, "steps on random Pythia-14m- and GPT-2-124M-shaped models (step/lm/…, ms;")
		fmt.Fprintln(stderr, "tokens/lm/…, tokens/s; mem/lm/gpt2-124m/peak_rss) against ci/perf_lm_ref.py's")
		fmt.Fprintln(stderr, "PyTorch (ratio/step/lm/…, builtin/PyTorch time): a few steps each, minutes in all.")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *threads < 1 {
		return fmt.Errorf("bench perf: --threads %d, want at least 1", *threads)
	}
	cfg := perfConfig{
		threads: *threads, shapes: kernels.PerfShapes(), setups: perfSetups(),
		gemmTime: 200 * time.Millisecond, warmup: 5, steps: 50,
		ref: !*noRef, refQuick: *quick, python: os.Getenv("PEFTBENCH_PYTHON"),
		intruders: []int{1024},
	}
	if !*noMethods {
		cfg.setups = append(cfg.setups, methodSetups(stderr)...)
	}
	if *lmRows || *lmOnly {
		cfg.lm = lmPerfSetups()
	}
	if *lmOnly {
		cfg.shapes, cfg.setups, cfg.intruders, cfg.lmOnly = nil, nil, nil, true
	}
	if *large && !*lmOnly {
		cfg.intruders = append(cfg.intruders, 4096)
	}
	if *quick {
		cfg.gemmTime, cfg.warmup, cfg.steps = 50*time.Millisecond, 2, 10
	}
	if cfg.python == "" {
		cfg.python = "/usr/bin/python3"
	}
	fmt.Fprintf(stderr, "bench perf: %s, %d CPUs, threads %d, kernel %s, %s/%s\n",
		cpuModel(), runtime.NumCPU(), cfg.threads, kernels.Kernel(), runtime.GOOS, runtime.GOARCH)
	figs, err := measurePerf(cfg, stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, figs)
	}
	return printPerf(stdout, figs)
}

// measurePerf runs the Go measurements at cfg.threads, then the reference
// script if asked, and returns all figures with the ratios last.
func measurePerf(cfg perfConfig, stderr io.Writer) ([]perfFigure, error) {
	prev := runtime.GOMAXPROCS(cfg.threads)
	var figs []perfFigure
	for _, s := range cfg.shapes {
		figs = append(figs, perfFigure{"sgemm/" + s.Name, round4(kernels.MeasureSgemm(s, cfg.gemmTime)), "GFLOP/s"})
	}
	for _, s := range cfg.setups {
		wall, cpu := timeSteps(s.mk(), cfg.warmup, cfg.steps)
		figs = append(figs,
			perfFigure{"step/" + s.name, round4(wall), "ms"},
			perfFigure{"cpu/step/" + s.name, round4(cpu), "ms"})
	}
	for _, n := range cfg.intruders {
		f, err := measureIntruders(n, stderr)
		if err != nil {
			runtime.GOMAXPROCS(prev)
			return nil, fmt.Errorf("bench perf: intruders at n=%d: %w", n, err)
		}
		figs = append(figs, f...)
	}
	figs = append(figs, measureLM(cfg.lm, stderr)...)
	runtime.GOMAXPROCS(prev)
	figs = append(figs, loraRatios(figs)...)
	figs = append(figs, perfFigure{"mem/peak_rss", float64(peakRSS()), "bytes"})
	if !cfg.ref {
		return figs, nil
	}
	var ref []perfFigure
	if !cfg.lmOnly {
		var err error
		if ref, err = runRef(cfg, stderr); err != nil {
			fmt.Fprintf(stderr, "bench perf: no reference figures: %v\n", err)
			return figs, nil
		}
	}
	if len(cfg.lm) > 0 {
		lmRef, err := runLMRef(cfg, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "bench perf: no PyTorch LM figures: %v\n", err)
		}
		ref = append(ref, lmRef...)
	}
	return append(append(figs, ref...), perfRatios(figs, ref)...), nil
}

// timeSteps runs warmup steps, then steps timed one by one, and returns the
// median wall time and the mean process CPU time per step, in ms.
func timeSteps(r *nn.RefTrainer, warmup, steps int) (wall, cpu float64) {
	for range warmup {
		r.Step()
	}
	d := make([]float64, steps)
	c0 := cpuTime()
	for i := range d {
		t0 := time.Now()
		r.Step()
		d[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	cpu = float64((cpuTime() - c0).Nanoseconds()) / 1e6 / float64(steps)
	slices.Sort(d)
	n := len(d)
	return (d[(n-1)/2] + d[n/2]) / 2, cpu
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is the process's peak resident set size in bytes (Linux reports
// ru_maxrss in KiB).
func peakRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return int64(ru.Maxrss) * 1024
}

// runRef runs ci/perf_ref.py with the same thread count and returns its
// figures renamed ref/numpy/… and ref/torch/….
func runRef(cfg perfConfig, stderr io.Writer) ([]perfFigure, error) {
	script := cfg.refScript
	if script == "" {
		root, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		script = filepath.Join(root, "ci", "perf_ref.py")
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("reference script missing: %w", err)
	}
	if _, err := exec.LookPath(cfg.python); err != nil {
		return nil, fmt.Errorf("python interpreter %s: %w", cfg.python, err)
	}
	args := []string{script, "--threads", fmt.Sprint(cfg.threads)}
	if cfg.refQuick {
		args = append(args, "--quick")
	}
	if len(cfg.intruders) > 0 {
		ns := make([]string, len(cfg.intruders))
		for i, n := range cfg.intruders {
			ns[i] = fmt.Sprint(n)
		}
		args = append(args, "--svd", strings.Join(ns, ","))
	}
	cmd := exec.Command(cfg.python, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", cfg.python, strings.Join(args, " "), err)
	}
	var raw []perfFigure
	if err := json.Unmarshal(out.Bytes(), &raw); err != nil {
		return nil, fmt.Errorf("%s: output is not a JSON array of figures: %w", script, err)
	}
	for i := range raw {
		raw[i].Name = "ref/" + raw[i].Name
	}
	return raw, nil
}

// perfRatios compares each Go figure with its reference: ratio/sgemm/X is
// Go/numpy GFLOP/s (unit "x", higher is better), ratio/step/X and
// ratio/cpu/step/X are Go/torch ms, ratio/intruders/X is Go over one numpy
// SVD and ratio/analysis/intruders/X Go over numpy doing the same analysis
// (unit "ratio", lower is better).
func perfRatios(goFigs, ref []perfFigure) []perfFigure {
	refs := map[string]float64{}
	for _, f := range ref {
		refs[f.Name] = f.Value
	}
	var out []perfFigure
	for _, f := range goFigs {
		var key, unit string
		switch {
		case strings.HasPrefix(f.Name, "sgemm/"):
			key, unit = "ref/numpy/"+f.Name, "x"
		case strings.HasPrefix(f.Name, "step/"), strings.HasPrefix(f.Name, "cpu/step/"):
			key, unit = "ref/torch/"+f.Name, "ratio"
		case strings.HasPrefix(f.Name, "intruders/"):
			// The analysis of a pair against one numpy SVD of a matrix of
			// that size (the reference), and against the same
			// analysis done with numpy (ratio/analysis/…).
			n, _, _ := strings.Cut(strings.TrimPrefix(f.Name, "intruders/"), "/")
			key, unit = "ref/numpy/svd/"+n, "ratio"
			if r, ok := refs["ref/numpy/"+f.Name]; ok && r > 0 {
				out = append(out, perfFigure{"ratio/analysis/" + f.Name, round4(f.Value / r), unit})
			}
		default:
			continue
		}
		if r, ok := refs[key]; ok && r > 0 {
			out = append(out, perfFigure{"ratio/" + f.Name, round4(f.Value / r), unit})
		}
	}
	return out
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory (run bench perf inside the peftbench module to find ci/perf_ref.py)")
		}
		dir = up
	}
}

// cpuModel is the "model name" of /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func printPerf(w io.Writer, figs []perfFigure) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVALUE\tUNIT")
	for _, f := range figs {
		v, unit := f.Value, f.Unit
		if unit == "bytes" {
			v, unit = v/(1<<20), "MiB"
		}
		fmt.Fprintf(tw, "%s\t%10.2f\t%s\n", f.Name, v, unit)
	}
	return tw.Flush()
}

func round4(x float64) float64 {
	const s = 1e4
	if x < 0 {
		return -float64(int64(-x*s+0.5)) / s
	}
	return float64(int64(x*s+0.5)) / s
}
