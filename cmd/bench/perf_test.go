package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"peftbench/kernels"
	"peftbench/lm"
	"peftbench/regress"
)

func TestPerfRatios(t *testing.T) {
	goFigs := []perfFigure{
		{"sgemm/n=512", 150, "GFLOP/s"},
		{"sgemm/n=1024", 160, "GFLOP/s"}, // no reference: no ratio
		{"step/mlp/lora", 3, "ms"},
		{"cpu/step/mlp/lora", 5, "ms"},
		{"mem/peak_rss", 1 << 20, "bytes"},
		{"intruders/n=1024", 2, "s"},
		{"intruders/n=1024/cached", 0.5, "s"},
	}
	ref := []perfFigure{
		{"ref/numpy/sgemm/n=512", 200, "GFLOP/s"},
		{"ref/torch/step/mlp/lora", 4, "ms"},
		{"ref/torch/cpu/step/mlp/lora", 0, "ms"}, // zero: no ratio
		{"ref/numpy/svd/n=1024", 0.5, "s"},
		{"ref/numpy/intruders/n=1024", 1, "s"},
		{"ref/numpy/intruders/n=1024/cached", 0.25, "s"},
	}
	got := perfRatios(goFigs, ref)
	want := []perfFigure{
		{"ratio/sgemm/n=512", 0.75, "x"},
		{"ratio/step/mlp/lora", 0.75, "ratio"},
		// Both intruder figures against one SVD, and each against numpy
		// doing the same analysis.
		{"ratio/analysis/intruders/n=1024", 2, "ratio"},
		{"ratio/intruders/n=1024", 4, "ratio"},
		{"ratio/analysis/intruders/n=1024/cached", 2, "ratio"},
		{"ratio/intruders/n=1024/cached", 1, "ratio"},
	}
	if len(got) != len(want) {
		t.Fatalf("perfRatios = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ratio %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// fakePython writes an executable that ignores its arguments and prints out.
func fakePython(t *testing.T, out string) string {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "out.json")
	if err := os.WriteFile(data, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "python")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\ncat "+data+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

func smallPerfConfig(t *testing.T) perfConfig {
	script := filepath.Join(t.TempDir(), "perf_ref.py")
	if err := os.WriteFile(script, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return perfConfig{
		threads:  1,
		shapes:   []kernels.Shape{{Name: "n=64", M: 64, N: 64, K: 64}},
		gemmTime: time.Millisecond,
		warmup:   1, steps: 2,
		setups:    perfSetups()[:1], // mlp/lora
		ref:       true,
		refScript: script,
	}
}

func TestMeasurePerfWithReference(t *testing.T) {
	cfg := smallPerfConfig(t)
	cfg.python = fakePython(t, `[{"name":"numpy/sgemm/n=64","value":10,"unit":"GFLOP/s"},
		{"name":"torch/step/mlp/lora","value":1000,"unit":"ms"}]`)
	var stderr bytes.Buffer
	figs, err := measurePerf(cfg, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]perfFigure{}
	for _, f := range figs {
		byName[f.Name] = f
		if !(f.Value > 0) {
			t.Errorf("%s = %v %s, want > 0", f.Name, f.Value, f.Unit)
		}
	}
	for _, name := range []string{"sgemm/n=64", "step/mlp/lora", "cpu/step/mlp/lora", "mem/peak_rss",
		"ref/numpy/sgemm/n=64", "ref/torch/step/mlp/lora", "ratio/sgemm/n=64", "ratio/step/mlp/lora"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("no figure %s in %v (stderr: %s)", name, figs, stderr.String())
		}
	}
	if r, s := byName["ratio/step/mlp/lora"], byName["step/mlp/lora"]; r.Value != round4(s.Value/1000) {
		t.Errorf("ratio/step/mlp/lora = %v, want %v/1000", r.Value, s.Value)
	}
	// The figures read back as regress reads them.
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(figs); err != nil {
		t.Fatal(err)
	}
	samples, err := regress.ReadPerf(&buf)
	if err != nil || len(samples) != len(figs) {
		t.Errorf("regress.ReadPerf: %d samples, %v; want %d", len(samples), err, len(figs))
	}
}

func TestMeasurePerfReferenceProblems(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*perfConfig)
		stderr string
	}{
		{"missing script", func(c *perfConfig) { c.refScript = filepath.Join(t.TempDir(), "nope.py") }, "reference script missing"},
		{"missing python", func(c *perfConfig) { c.python = filepath.Join(t.TempDir(), "python") }, "python interpreter"},
		{"bad output", func(c *perfConfig) { c.python = fakePython(t, "torch unavailable") }, "not a JSON array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallPerfConfig(t)
			cfg.python = fakePython(t, "[]")
			tc.edit(&cfg)
			var stderr bytes.Buffer
			figs, err := measurePerf(cfg, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tc.stderr)
			}
			for _, f := range figs {
				if strings.HasPrefix(f.Name, "ref/") || strings.HasPrefix(f.Name, "ratio/") {
					t.Errorf("figure %s without a working reference", f.Name)
				}
			}
		})
	}
}

func TestPerfFindsReferenceScript(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "ci", "perf_ref.py")); err != nil {
		t.Errorf("ci/perf_ref.py not found from the module root: %v", err)
	}
}

func TestPerfFlags(t *testing.T) {
	for _, args := range [][]string{{"--threads", "0"}, {"extra"}, {"--nope"}} {
		var out, errb bytes.Buffer
		if err := runPerf(args, &out, &errb); err == nil {
			t.Errorf("bench perf %v: no error", args)
		}
	}
}

func TestPrintPerfTable(t *testing.T) {
	var out bytes.Buffer
	figs := []perfFigure{{"sgemm/n=1024", 123.456, "GFLOP/s"}, {"mem/peak_rss", 3 << 20, "bytes"}}
	if err := printPerf(&out, figs); err != nil {
		t.Fatal(err)
	}
	want := "NAME          VALUE       UNIT\n" +
		"sgemm/n=1024      123.46  GFLOP/s\n" +
		"mem/peak_rss        3.00  MiB\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestLoRARatios(t *testing.T) {
	figs := []perfFigure{
		{"step/mlp/lora", 2, "ms"},
		{"cpu/step/mlp/lora", 9, "ms"}, // CPU figures have no LoRA ratio
		{"step/mlp/oft", 5, "ms"},
		{"step/transformer/oft", 30, "ms"}, // no transformer LoRA row: no ratio
		{"sgemm/n=512", 100, "GFLOP/s"},
	}
	got := loraRatios(figs)
	want := []perfFigure{{"ratio/lora/step/mlp/oft", 2.5, "ratio"}}
	if len(got) != len(want) || got[0] != want[0] {
		t.Errorf("loraRatios = %v, want %v", got, want)
	}
}

// tinyLMSetup is a one-layer GPT-NeoX-shaped step that runs in
// milliseconds, for tests of the --lm plumbing.
func tinyLMSetup() lmPerfSetup {
	return lmPerfSetup{name: "tiny", batch: 2, seq: 8, warmup: 1, steps: 2, rss: true,
		cfg: &lm.Config{ModelType: lm.NeoX, Vocab: 50, Dim: 16, Layers: 1, Heads: 2, KVHeads: 2, HeadDim: 8,
			FFN: 32, MaxPos: 16, NormEps: 1e-5, Act: "gelu", RopeTheta: 10000, RotaryDims: 2,
			ParallelResidual: true, QKVBias: true, OBias: true, MLPBias: true, ScaleAttn: true}}
}

// TestMeasurePerfLM runs the --lm-only path on a tiny model against a fake
// PyTorch reference: the Go figures (ms, tokens/s, peak RSS), the
// reference's, and ratio/step/lm/… = Go ms / torch ms. Catches LM rows
// missing from the figures, a tokens/s that is not batch·seq over the
// step time, and LM reference figures not compared.
func TestMeasurePerfLM(t *testing.T) {
	cfg := perfConfig{threads: 1, lm: []lmPerfSetup{tinyLMSetup()}, lmOnly: true, ref: true,
		lmRefScript: filepath.Join(t.TempDir(), "perf_lm_ref.py")}
	if err := os.WriteFile(cfg.lmRefScript, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.python = fakePython(t, `[{"name":"torch/step/lm/tiny/lora","value":0.01,"unit":"ms"},
		{"name":"torch/tokens/lm/tiny/lora","value":16,"unit":"tokens/s"},
		{"name":"torch/mem/lm/tiny/peak_rss","value":1000000,"unit":"bytes"}]`)
	var stderr bytes.Buffer
	figs, err := measurePerf(cfg, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]perfFigure{}
	for _, f := range figs {
		byName[f.Name] = f
		if strings.HasPrefix(f.Name, "sgemm/") || strings.HasPrefix(f.Name, "intruders/") {
			t.Errorf("--lm-only timed %s", f.Name)
		}
	}
	for _, name := range []string{"step/lm/tiny/lora", "tokens/lm/tiny/lora", "mem/lm/tiny/peak_rss",
		"mem/lm/tiny/graph", "ref/torch/step/lm/tiny/lora", "ref/torch/mem/lm/tiny/peak_rss", "ratio/step/lm/tiny/lora"} {
		if f, ok := byName[name]; !ok || !(f.Value > 0) {
			t.Errorf("figure %s = %v (present %v); stderr: %s", name, f, ok, stderr.String())
		}
	}
	// The step's ms are rounded to 4 decimals (round4) and the tiny step
	// takes a few hundredths of a ms: tokens/s, from the unrounded time,
	// lies within what that rounding allows.
	step, tok := byName["step/lm/tiny/lora"].Value, byName["tokens/lm/tiny/lora"].Value
	if lo, hi := 16/(step+0.5e-4)*1e3, 16/max(step-0.5e-4, 1e-9)*1e3; !(tok >= lo*(1-1e-3) && tok <= hi*(1+1e-3)) {
		t.Errorf("tokens/s %v, want 16 tokens / %v ms (±0.00005 ms of rounding): [%v, %v]", tok, step, lo, hi)
	}
	if r := byName["ratio/step/lm/tiny/lora"].Value; r != round4(step/0.01) {
		t.Errorf("ratio/step/lm/tiny/lora = %v, want %v/0.01", r, step)
	}
}

// TestLMPerfSetupShapes pins the two LM shapes: Pythia-14m (6
// layers, width 128, 4 heads, FFN 512, vocabulary 50304, rotary 0.25,
// parallel residual) at 8 × 128 and GPT-2 124M (12 layers, 768, 12 heads,
// 3072, 50257, tied head) at 8 × 256, whose peak RSS is reported.
func TestLMPerfSetupShapes(t *testing.T) {
	s := lmPerfSetups()
	if len(s) != 2 {
		t.Fatalf("%d LM setups, want 2", len(s))
	}
	p, g := s[0], s[1]
	if c := p.cfg; p.name != "pythia14m" || c.ModelType != lm.NeoX || c.Layers != 6 || c.Dim != 128 || c.Heads != 4 ||
		c.FFN != 512 || c.Vocab != 50304 || c.RotaryDims != c.HeadDim/4 || !c.ParallelResidual || p.batch != 8 || p.seq != 128 {
		t.Errorf("pythia setup %+v %+v", p, *c)
	}
	if c := g.cfg; g.name != "gpt2-124m" || c.ModelType != lm.GPT2 || c.Layers != 12 || c.Dim != 768 || c.Heads != 12 ||
		c.FFN != 3072 || c.Vocab != 50257 || !c.Tied || g.batch != 8 || g.seq != 256 || !g.rss {
		t.Errorf("gpt2 setup %+v %+v", g, *c)
	}
}

func TestHWM(t *testing.T) {
	resetPeakRSS()
	if h := hwm(); h <= 0 {
		t.Errorf("peak RSS %d", h)
	}
}
