package methods

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"peftbench/nn"
)

// python returns the interpreter for cross-checks (PEFTBENCH_PYTHON, else
// /usr/bin/python3) or skips the test when it cannot import torch.
func python(t *testing.T) string {
	t.Helper()
	py := os.Getenv("PEFTBENCH_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	if out, err := exec.Command(py, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("no PyTorch cross-check: %s cannot import torch (%v: %s); set PEFTBENCH_PYTHON", py, err, bytes.TrimSpace(out))
	}
	return py
}

type torchLayer struct {
	Out    int       `json:"out"`
	In     int       `json:"in"`
	W      []float32 `json:"W"`
	B      []float32 `json:"b"`
	Frozen bool      `json:"frozen,omitempty"`
	// The random initial factors a method draws from the trial's stream:
	// LoRA's A, LoRA-XS's R₀, AdaLoRA's P₀ and Q₀. Nothing a method
	// derives (projections, decompositions, gradients) is exported.
	A  []float32 `json:"A,omitempty"`
	R0 []float32 `json:"R0,omitempty"`
	P0 []float32 `json:"P0,omitempty"`
	Q0 []float32 `json:"Q0,omitempty"`
	// Init holds the random initial tensors of a method registered with
	// addTorchCase, by the names its export function gives them.
	Init map[string][]float32 `json:"init,omitempty"`
}

type torchCase struct {
	Name        string         `json:"name"`
	Options     map[string]any `json:"options"` // resolved, plus "method"
	LR          float64        `json:"lr"`
	WeightDecay float64        `json:"weight_decay"`
	Clip        float64        `json:"clip"`
	Steps       int            `json:"steps"`
	Batch       int            `json:"batch"`
	X           []float32      `json:"x"`
	Labels      []int          `json:"labels"`
	Layers      []torchLayer   `json:"layers"`
	goLosses    []float32
}

// torchCases are the cross-check's trials: every registered method on
// the reference MLP, with gradient clipping active.
// Methods with few trainable numbers get a larger learning rate so that
// 20 steps move them far enough for a wrong detail to show; the clip sits
// below each method's gradient norm so that it acts in most steps.
var torchCases = []torchSpec{
	{name: "full", method: "full", opts: nil, lr: 1e-2, clip: 0.05},
	{name: "lora", method: "lora", opts: map[string]any{"rank": 4, "alpha": 8}, lr: 1e-2, clip: 0.05},
	{name: "rslora", method: "rslora", opts: map[string]any{"rank": 4, "alpha": 8}, lr: 1e-2, clip: 0.05},
	{name: "loraplus", method: "loraplus", opts: map[string]any{"rank": 4, "alpha": 8, "lr_ratio": 4}, lr: 1e-2, clip: 0.05},
	{name: "lora-fa", method: "lora-fa", opts: map[string]any{"rank": 4, "alpha": 8}, lr: 1e-2, clip: 0.05},
	{name: "dora", method: "dora", opts: map[string]any{"rank": 4, "alpha": 8}, lr: 1e-2, clip: 0.05},
	{name: "pissa", method: "pissa", opts: map[string]any{"rank": 4, "alpha": 8}, lr: 1e-2, clip: 0.05},
	{name: "olora", method: "olora", opts: map[string]any{"rank": 4, "alpha": 8}, lr: 1e-2, clip: 0.05},
	{name: "vera", method: "vera", opts: map[string]any{"rank": 16}, lr: 5e-2, clip: 0.005},
	{name: "lora-xs", method: "lora-xs", opts: map[string]any{"rank": 4, "alpha": 8}, lr: 5e-2, clip: 0.03},
	{name: "adalora", method: "adalora", opts: map[string]any{"rank": 2, "init_rank": 4, "alpha": 8}, lr: 5e-2, clip: 0.03},
	{name: "lora-ga", method: "lora-ga", opts: map[string]any{"rank": 4, "alpha": 8}, lr: 1e-2, clip: 0.05},
}

// torchSpec is one cross-check trial. export, when set, returns the
// random initial tensors the method drew from the trial's stream for one
// targeted layer (after Attach and any BeforeTraining), which the Python
// side takes as shared inputs; everything else it derives itself.
type torchSpec struct {
	name, method string
	opts         map[string]any
	lr, clip     float32
	export       func(l *nn.Linear) map[string][]float32
}

// torchElsewhere names, by method, the test that cross-checks a method
// against PyTorch on a model of its own, for methods the MLP of
// TestTorchCrossCheck cannot run (LN tuning: the MLP has no norm layers).
// A method's test file fills it from an init function.
var torchElsewhere = map[string]string{}

// addTorchCase registers a cross-check case from a method's own test file
// (an init function); its Python half is testdata/torch/<method>.py, which
// torch_methods.py loads by the method's name (see its docstring).
func addTorchCase(c torchSpec) { torchCases = append(torchCases, c) }

// TestTorchCrossCheck trains every method on a small MLP here and in
// testdata/torch_methods.py, which re-implements each from its paper, HF
// PEFT's source or the authors' code, from the same base weights, batch and
// random initial factors (and nothing else the Go code computed): the task
// losses of 20 AdamW steps with weight decay and active gradient clipping
// agree to 1e-4 relative.
func TestTorchCrossCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: PyTorch cross-check skipped")
	}
	py := python(t)
	const steps, batch = 20, 32
	sizes := []int{24, 48, 40, 6}
	checked := map[string]bool{}
	for _, c := range torchCases {
		checked[c.method] = true
	}
	for _, name := range Names() {
		if !checked[name] && torchElsewhere[name] == "" {
			t.Errorf("method %s has no cross-check case: add one with addTorchCase in its test file", name)
		}
	}
	var cases []*torchCase
	for _, c := range torchCases {
		mlp := nn.NewMLP(sizes, nn.NewRNG(11, "init"))
		data := nn.NewRNG(11, "data")
		x := nn.New(batch, sizes[0])
		data.FillNormal(x, 0, 1)
		labels := make([]int, batch)
		for i := range labels {
			labels[i] = data.Intn(sizes[len(sizes)-1])
		}
		o, err := ResolveOptions(c.method, 0, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		opts := map[string]any{"method": c.method}
		for k, v := range o {
			opts[k] = v
		}
		tc := &torchCase{Name: c.name, Options: opts, LR: float64(c.lr), WeightDecay: 0.01, Clip: float64(c.clip),
			Steps: steps, Batch: batch, X: x.Data, Labels: labels}
		for _, l := range mlp.Layers {
			tc.Layers = append(tc.Layers, torchLayer{Out: l.Out, In: l.In,
				W: slices.Clone(l.Weight.Data), B: slices.Clone(l.Bias.Data), Frozen: l.Name == "head"})
		}
		targets := mlp.Layers[:2]
		att, err := Attach(c.method, targets, o, nn.NewRNG(11, "method"))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range targets {
			switch a := l.Adapter.(type) {
			case *LoRA:
				tc.Layers[i].A = slices.Clone(a.A.Data)
			case *DoRA:
				tc.Layers[i].A = slices.Clone(a.A.Data)
			case *LoRAXS:
				tc.Layers[i].R0 = slices.Clone(a.R.Data)
			case *AdaLoRA:
				tc.Layers[i].P0, tc.Layers[i].Q0 = slices.Clone(a.P.Data), slices.Clone(a.Q.Data)
			}
		}
		loss := func(g *nn.Graph) *nn.Tensor { return g.CrossEntropy(mlp.Forward(g, x), labels) }
		tr := newTrainer(t, att, loss)
		if c.export != nil {
			for i, l := range targets {
				tc.Layers[i].Init = c.export(l)
			}
		}
		tr.opt.WeightDecay = 0.01
		clipped := 0
		for s := range steps {
			l, norm := tr.runNorm(s, steps, c.lr, c.clip)
			tc.goLosses = append(tc.goLosses, l)
			if norm > float64(c.clip) {
				clipped++
			}
		}
		// The clip must act, or the order of clipping and LoRA-FA's
		// preconditioning would go unchecked.
		if clipped < steps/2 {
			t.Errorf("%s: gradient clipping acted in %d of %d steps; lower the clip", c.name, clipped, steps)
		}
		cases = append(cases, tc)
	}
	torch := runTorch(t, py, cases)
	for _, tc := range cases {
		tl := torch[tc.Name]
		if len(tl) != steps {
			t.Errorf("%s: torch gave %d losses, want %d", tc.Name, len(tl), steps)
			continue
		}
		var worst float64
		for s, gl := range tc.goLosses {
			worst = max(worst, math.Abs(float64(gl)-tl[s])/math.Abs(tl[s]))
		}
		t.Logf("%s: loss %.5f → %.5f (torch %.5f → %.5f), max relative difference %.2g",
			tc.Name, tc.goLosses[0], tc.goLosses[steps-1], tl[0], tl[steps-1], worst)
		if worst > 1e-4 {
			t.Errorf("%s: losses differ from PyTorch's by %.3g relative\ngo    %v\ntorch %v", tc.Name, worst, tc.goLosses, tl)
		}
		if !(tc.goLosses[steps-1] < tc.goLosses[0]) {
			t.Errorf("%s: loss did not fall", tc.Name)
		}
	}
}

// runTorch runs testdata/torch_methods.py on cases and returns its losses
// by case name.
func runTorch(t *testing.T, py string, cases []*torchCase) map[string][]float64 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cases.json")
	buf, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join("testdata", "torch_methods.py"), path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("torch_methods.py: %v\n%s", err, stderr.Bytes())
	}
	var torch map[string][]float64
	if err := json.Unmarshal(out, &torch); err != nil {
		t.Fatalf("torch_methods.py output: %v\n%s", err, out)
	}
	return torch
}
