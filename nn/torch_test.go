package nn_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"peftbench/methods"
	"peftbench/nn"
)

// torchPython returns an interpreter that imports torch, or skips the test.
// PEFTBENCH_PYTHON names it; the default is /usr/bin/python3, where
// Debian's python3-torch installs (the first python3 on PATH may lack it).
func torchPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv("PEFTBENCH_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	if out, err := exec.Command(py, "-c", "import torch, numpy").CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Skipf("skipping the PyTorch cross-check: %s cannot import torch and numpy (%s); install Debian's python3-torch or set PEFTBENCH_PYTHON",
			py, lines[len(lines)-1])
	}
	return py
}

type torchSpec struct {
	Model     string                `json:"model"`
	Linears   []string              `json:"linears,omitempty"`
	Act       string                `json:"act,omitempty"`
	X         string                `json:"x,omitempty"`
	XShape    []int                 `json:"x_shape,omitempty"`
	Cfg       *nn.TransformerConfig `json:"cfg,omitempty"`
	Batch     int                   `json:"batch,omitempty"`
	Seq       int                   `json:"seq,omitempty"`
	IDs       []int                 `json:"ids,omitempty"`
	Labels    []int                 `json:"labels"`
	NormEps   float64               `json:"norm_eps"`
	Tensors   []torchTensor         `json:"tensors"`
	Trainable []torchParam          `json:"trainable"`
	LoRA      *torchLoRA            `json:"lora,omitempty"`
	Opt       torchOpt              `json:"opt"`
	Steps     int                   `json:"steps"`
}

type torchTensor struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	File  string `json:"file"`
}

type torchParam struct {
	Name  string  `json:"name"`
	Decay bool    `json:"decay"`
	LRMul float32 `json:"lrmul"`
}

type torchLoRA struct {
	Layers []string `json:"layers"`
	Scale  float32  `json:"scale"`
}

type torchOpt struct {
	LR    float32 `json:"lr"`
	Beta1 float32 `json:"beta1"`
	Beta2 float32 `json:"beta2"`
	Eps   float32 `json:"eps"`
	WD    float32 `json:"wd"`
	Clip  float32 `json:"clip"`
}

type torchOut struct {
	Losses     []float64            `json:"losses"`
	GradsFirst map[string][]float64 `json:"grads_first"`
	GradsLast  map[string][]float64 `json:"grads_last"`
	Final      map[string][]float64 `json:"final"`
}

func writeF32(t *testing.T, path string, data []float32) {
	t.Helper()
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTorchCrossCheck builds the same MLP and transformer with the same
// weights in PyTorch, runs forward, backward and 20 AdamW steps (with
// clipping and weight decay) with LoRA r=8 and with full fine-tuning, and
// requires the losses of every step, the gradients of the first and last
// steps and the final weights to agree within 1e-4 relative.
func TestTorchCrossCheck(t *testing.T) {
	py := torchPython(t)
	script, err := filepath.Abs("testdata/torch_check.py")
	if err != nil {
		t.Fatal(err)
	}
	methodsByName := map[string]func(l *nn.Linear, rng *nn.RNG) nn.Adapter{
		"LoRA": func(l *nn.Linear, rng *nn.RNG) nn.Adapter { return methods.NewLoRA(l, 8, 16, rng) },
		"Full": func(l *nn.Linear, _ *nn.RNG) nn.Adapter { return methods.NewFull(l) },
	}
	// Train every case in Go, replay them all in one Python process (torch
	// takes seconds to import), then compare.
	type pending struct {
		name    string
		dir     string
		compare func(t *testing.T)
	}
	var cases []pending
	args := []string{script}
	for _, model := range []string{"MLP", "Transformer"} {
		for _, method := range []string{"LoRA", "Full"} {
			dir := t.TempDir()
			cmp := crossCheck(t, dir, model, method, methodsByName[method])
			cases = append(cases, pending{model + "/" + method, dir, cmp})
			args = append(args, dir)
		}
	}
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", py, script, err, out)
	}
	for _, c := range cases {
		t.Run(c.name, c.compare)
	}
}

// crossCheck writes the spec of one case into dir, trains it in Go and
// returns the comparison to run once Python has written dir/out.json.
func crossCheck(t *testing.T, dir, model, method string, attach func(*nn.Linear, *nn.RNG) nn.Adapter) func(t *testing.T) {
	const steps = 20
	spec := torchSpec{NormEps: nn.NormEps, Steps: steps,
		Opt: torchOpt{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WD: 0.01, Clip: 1}}
	var m nn.Model
	var loss func(g *nn.Graph) *nn.Tensor
	rng := nn.NewRNG(11, "init")
	switch model {
	case "MLP":
		mlp := nn.NewMLP([]int{32, 48, 48, 10}, rng)
		x := nn.New(16, 32)
		data := nn.NewRNG(11, "data")
		data.FillNormal(x, 0, 1)
		labels := make([]int, 16)
		for i := range labels {
			labels[i] = data.Intn(10)
		}
		writeF32(t, filepath.Join(dir, "x.f32"), x.Data)
		spec.Model, spec.Act, spec.X, spec.XShape, spec.Labels = "mlp", mlp.Act, "x.f32", x.Shape, labels
		for _, l := range mlp.Layers {
			spec.Linears = append(spec.Linears, l.Name)
		}
		m = mlp
		loss = func(g *nn.Graph) *nn.Tensor { return g.CrossEntropy(mlp.Forward(g, x), labels) }
	case "Transformer":
		cfg := nn.TransformerConfig{Vocab: 23, Dim: 32, Heads: 4, Blocks: 2, Seq: 12, MLPRatio: 4}
		tr := nn.NewTransformer(cfg, rng)
		// Wider weights than GPT-2's init, so the check is not dominated by
		// the residual stream.
		for _, l := range tr.Linears() {
			nn.NewRNG(11, l.Name).FillNormal(l.Weight, 0, 0.15)
		}
		const batch, seq = 3, 12
		data := nn.NewRNG(11, "data")
		ids, labels := make([]int, batch*seq), make([]int, batch*seq)
		for i := range ids {
			ids[i] = data.Intn(cfg.Vocab)
		}
		for i := range labels {
			labels[i] = -1
			if (i+1)%seq != 0 {
				labels[i] = ids[i+1]
			}
		}
		spec.Model, spec.Cfg, spec.Batch, spec.Seq, spec.IDs, spec.Labels = "transformer", &tr.Cfg, batch, seq, ids, labels
		m = tr
		loss = func(g *nn.Graph) *nn.Tensor { return g.CrossEntropy(tr.Forward(g, ids, batch, seq), labels) }
	}
	lrng := nn.NewRNG(11, "lora")
	for _, l := range m.Linears() {
		l.Adapter = attach(l, lrng)
		if lo, ok := l.Adapter.(*methods.LoRA); ok {
			if spec.LoRA == nil {
				spec.LoRA = &torchLoRA{Scale: lo.Scale}
			}
			spec.LoRA.Layers = append(spec.LoRA.Layers, l.Name)
		}
	}
	if method == "Full" {
		nn.SetTrainable(m.Params(), true)
	}
	params := nn.AllParams(m)
	state := m.StateDict()
	for _, p := range params {
		state[p.Name] = p.T
		spec.Trainable = append(spec.Trainable, torchParam{Name: p.Name, Decay: p.Decay, LRMul: p.LRMul})
	}
	names := make([]string, 0, len(state))
	for name := range state {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		file := fmt.Sprintf("t%d.f32", i)
		writeF32(t, filepath.Join(dir, file), state[name].Data)
		spec.Tensors = append(spec.Tensors, torchTensor{Name: name, Shape: state[name].Shape, File: file})
	}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "spec.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	// The same run in Go.
	o := &nn.AdamW{Beta1: spec.Opt.Beta1, Beta2: spec.Opt.Beta2, Eps: spec.Opt.Eps, WeightDecay: spec.Opt.WD}
	g := nn.NewGraph()
	var losses []float64
	var gradsFirst, gradsLast map[string][]float32
	snap := func() map[string][]float32 {
		s := map[string][]float32{}
		for _, p := range params {
			s[p.Name] = append([]float32(nil), p.T.Grad...)
		}
		return s
	}
	for step := range steps {
		g.Reset()
		nn.ZeroGrads(params)
		l := loss(g)
		g.Backward(l)
		losses = append(losses, float64(l.Data[0]))
		if step == 0 {
			gradsFirst = snap()
		}
		if step == steps-1 {
			gradsLast = snap()
		}
		nn.ClipGradNorm(params, spec.Opt.Clip)
		o.Step(params, spec.Opt.LR)
	}

	return func(t *testing.T) { compareTorch(t, dir, params, losses, gradsFirst, gradsLast) }
}

func compareTorch(t *testing.T, dir string, params []nn.ParamRef, losses []float64, gradsFirst, gradsLast map[string][]float32) {
	steps := len(losses)
	raw, err := os.ReadFile(filepath.Join(dir, "out.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want torchOut
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	const tol = 1e-4
	for i, l := range losses {
		if d := math.Abs(l-want.Losses[i]) / math.Abs(want.Losses[i]); d > tol {
			t.Errorf("step %d: loss %.7g, torch %.7g (relative difference %.2g)", i, l, want.Losses[i], d)
		}
	}
	t.Logf("loss %.6f → %.6f (torch %.6f → %.6f)", losses[0], losses[steps-1], want.Losses[0], want.Losses[steps-1])
	final := map[string][]float32{}
	for _, p := range params {
		final[p.Name] = p.T.Data
	}
	// A tensor can have a gradient that is zero in exact arithmetic (the
	// key bias: softmax ignores a shift of its scores), leaving only
	// rounding noise of about 1e-9 on both sides. Its gradient is compared
	// against the scale of all gradients, and its final value, Adam's
	// normalised noise, is not compared.
	null := map[string]bool{}
	var scale float64
	for _, g := range want.GradsFirst {
		scale = math.Max(scale, maxAbs(g))
	}
	for name, g := range want.GradsFirst {
		if maxAbs(g) < 1e-6*scale {
			null[name] = true
			t.Logf("%s: gradient zero up to rounding (%.2g); final value not compared", name, maxAbs(g))
		}
	}
	for _, c := range []struct {
		what string
		got  map[string][]float32
		want map[string][]float64
	}{{"first-step gradient", gradsFirst, want.GradsFirst}, {"last-step gradient", gradsLast, want.GradsLast}, {"final weight", final, want.Final}} {
		worst, worstName := 0.0, ""
		for _, p := range params {
			floor := 0.0
			if null[p.Name] {
				if c.what == "final weight" {
					continue
				}
				floor = scale
			}
			d := relDiff(c.got[p.Name], c.want[p.Name], floor)
			if d > worst {
				worst, worstName = d, p.Name
			}
			if d > tol {
				t.Errorf("%s of %s: relative difference %.2g > %g", c.what, p.Name, d, tol)
			}
		}
		t.Logf("%s: worst relative difference %.2g (%s)", c.what, worst, worstName)
	}
}

func maxAbs(x []float64) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

// relDiff is max|a−b| / max(max|b|, floor), the difference relative to
// the tensor's scale (element-wise ratios blow up where values cross
// zero). Two equal tensors differ by 0.
func relDiff(a []float32, b []float64, floor float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	num, den := 0.0, floor
	for i, v := range b {
		num = math.Max(num, math.Abs(float64(a[i])-v))
		den = math.Max(den, math.Abs(v))
	}
	if num == 0 {
		return 0
	}
	return num / den
}
