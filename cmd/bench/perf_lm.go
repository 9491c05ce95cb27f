package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"peftbench/lm"
	"peftbench/methods"
	"peftbench/nn"
)

// lmPerfSetup is one LM training step `bench perf --lm` times: a random
// model of a real checkpoint's shape, LoRA r=8 (α=16) on the fused
// attention input projection (HF PEFT's default target for GPT-2 and
// GPT-NeoX), the causal-LM loss over every position, AdamW with gradient
// clipping at 1. ci/perf_lm_ref.py builds the same step in PyTorch.
type lmPerfSetup struct {
	name          string // "pythia14m", "gpt2-124m"
	cfg           *lm.Config
	batch, seq    int
	warmup, steps int
	rss           bool // report this step's peak resident memory
}

// lmPerfSetups are the two shapes: Pythia-14m (batch 8 × 128) and
// GPT-2 124M (batch 8 × 256; few steps, since one takes seconds on a
// small machine).
func lmPerfSetups() []lmPerfSetup {
	pythia := &lm.Config{ModelType: lm.NeoX, Vocab: 50304, Dim: 128, Layers: 6, Heads: 4, KVHeads: 4, HeadDim: 32,
		FFN: 512, MaxPos: 2048, NormEps: 1e-5, Act: "gelu", RopeTheta: 10000, RotaryDims: 8,
		ParallelResidual: true, QKVBias: true, OBias: true, MLPBias: true, ScaleAttn: true}
	gpt2 := &lm.Config{ModelType: lm.GPT2, Vocab: 50257, Dim: 768, Layers: 12, Heads: 12, KVHeads: 12, HeadDim: 64,
		FFN: 3072, MaxPos: 1024, NormEps: 1e-5, Act: "gelu_new", Tied: true,
		QKVBias: true, OBias: true, MLPBias: true, ScaleAttn: true}
	return []lmPerfSetup{
		{name: "pythia14m", cfg: pythia, batch: 8, seq: 128, warmup: 1, steps: 5},
		{name: "gpt2-124m", cfg: gpt2, batch: 8, seq: 256, warmup: 1, steps: 2, rss: true},
	}
}

// build builds s's model and returns one training step and its graph.
func (s lmPerfSetup) build() (func(), *nn.Graph) {
	m := lm.New(s.cfg)
	rng := nn.NewRNG(1, "perf-lm")
	sd := m.StateDict()
	for _, name := range slices.Sorted(maps.Keys(sd)) {
		rng.FillNormal(sd[name], 0, 0.02)
	}
	var params []nn.ParamRef
	for _, l := range m.Layers {
		ad := methods.NewLoRA(l.QKV, 8, 16, nn.NewRNG(1, "lora."+l.QKV.Name))
		l.QKV.Adapter = ad
		params = append(params, ad.Params()...)
	}
	ids := make([]int, s.batch*s.seq)
	for i := range ids {
		ids[i] = rng.Intn(s.cfg.Vocab)
	}
	opt := nn.NewAdamW()
	g := nn.NewGraph()
	return func() {
		g.Reset()
		nn.ZeroGrads(params)
		g.Backward(m.Loss(g, ids, ids, s.batch, s.seq))
		nn.ClipGradNorm(params, 1)
		opt.Step(params, 1e-4)
	}, g
}

// measureLM times each setup: step/lm/<name>/lora (ms, median),
// tokens/lm/<name>/lora (tokens/s at that median) and, where asked,
// mem/lm/<name>/peak_rss: the process's peak resident memory over the
// setup's build and steps (VmHWM after resetting it through
// /proc/self/clear_refs; where that fails, the peak of the whole process),
// with mem/lm/<name>/graph, the bytes the step's graph holds (activations,
// their gradients, buffers; weights not included).
func measureLM(setups []lmPerfSetup, stderr io.Writer) []perfFigure {
	var figs []perfFigure
	for _, s := range setups {
		if s.rss {
			resetPeakRSS()
		}
		step, g := s.build()
		for range s.warmup {
			step()
		}
		d := make([]float64, s.steps)
		for i := range d {
			t0 := time.Now()
			step()
			d[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
		}
		med := median(d)
		fmt.Fprintf(stderr, "bench perf: lm/%s: %d warm-up + %d timed steps, median %.0f ms\n", s.name, s.warmup, s.steps, med)
		figs = append(figs,
			perfFigure{"step/lm/" + s.name + "/lora", round4(med), "ms"},
			perfFigure{"tokens/lm/" + s.name + "/lora", round4(float64(s.batch*s.seq) / med * 1e3), "tokens/s"})
		if s.rss {
			figs = append(figs, perfFigure{"mem/lm/" + s.name + "/peak_rss", float64(hwm()), "bytes"},
				perfFigure{"mem/lm/" + s.name + "/graph", float64(g.HeldBytes()), "bytes"})
		}
	}
	return figs
}

func median(d []float64) float64 {
	d = slices.Clone(d)
	slices.Sort(d)
	n := len(d)
	return (d[(n-1)/2] + d[n/2]) / 2
}

// resetPeakRSS resets the kernel's peak-RSS mark (Linux ≥ 4.0).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// hwm is VmHWM of /proc/self/status in bytes, else the rusage peak.
func hwm() int64 {
	f, err := os.Open("/proc/self/status")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64); err == nil {
					return kb * 1024
				}
			}
		}
	}
	return peakRSS()
}

// runLMRef runs ci/perf_lm_ref.py once per setup (its own process, so
// each peak RSS is its own) and returns its figures as ref/torch/….
func runLMRef(cfg perfConfig, stderr io.Writer) ([]perfFigure, error) {
	script := cfg.lmRefScript
	if script == "" {
		root, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		script = filepath.Join(root, "ci", "perf_lm_ref.py")
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("reference script missing: %w", err)
	}
	var all []perfFigure
	for _, s := range cfg.lm {
		c := s.cfg
		args := []string{script, "--threads", fmt.Sprint(cfg.threads), "--name", s.name, "--family", c.ModelType,
			"--layers", fmt.Sprint(c.Layers), "--dim", fmt.Sprint(c.Dim), "--heads", fmt.Sprint(c.Heads),
			"--ffn", fmt.Sprint(c.FFN), "--vocab", fmt.Sprint(c.Vocab), "--rotary", fmt.Sprint(c.RotaryDims),
			"--batch", fmt.Sprint(s.batch), "--seq", fmt.Sprint(s.seq),
			"--warmup", fmt.Sprint(s.warmup), "--steps", fmt.Sprint(s.steps)}
		cmd := exec.Command(cfg.python, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, stderr
		if err := cmd.Run(); err != nil {
			return all, fmt.Errorf("%s %s: %w", cfg.python, strings.Join(args, " "), err)
		}
		var raw []perfFigure
		if err := json.Unmarshal(out.Bytes(), &raw); err != nil {
			return all, fmt.Errorf("%s: output is not a JSON array of figures: %w", script, err)
		}
		for i := range raw {
			raw[i].Name = "ref/" + raw[i].Name
		}
		all = append(all, raw...)
	}
	return all, nil
}
