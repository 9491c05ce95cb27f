package methods

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
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
	A      []float32 `json:"A,omitempty"`
	VA     []float32 `json:"VA,omitempty"`
	VB     []float32 `json:"VB,omitempty"`
	Frozen bool      `json:"frozen,omitempty"`
}

type torchCase struct {
	Method      string       `json:"method"`
	Rank        int          `json:"rank"`
	Alpha       float64      `json:"alpha"`
	LR          float64      `json:"lr"`
	WeightDecay float64      `json:"weight_decay"`
	Steps       int          `json:"steps"`
	Batch       int          `json:"batch"`
	X           []float32    `json:"x"`
	Labels      []int        `json:"labels"`
	Layers      []torchLayer `json:"layers"`
	goLosses    []float32
}

// TestTorchCrossCheck trains LoRA, rsLoRA, DoRA, PiSSA and VeRA on a small
// MLP here and in testdata/torch_methods.py, which re-implements them from
// the papers' formulas, from the same weights and data: the losses of 20
// AdamW steps agree to 1e-4 relative.
func TestTorchCrossCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: PyTorch cross-check skipped")
	}
	py := python(t)
	const steps, batch = 20, 32
	sizes := []int{24, 48, 40, 6}
	var cases []*torchCase
	for _, c := range []struct {
		method string
		rank   int
	}{{"lora", 4}, {"rslora", 4}, {"dora", 4}, {"pissa", 4}, {"vera", 16}} {
		mlp := nn.NewMLP(sizes, nn.NewRNG(11, "init"))
		data := nn.NewRNG(11, "data")
		x := nn.New(batch, sizes[0])
		data.FillNormal(x, 0, 1)
		labels := make([]int, batch)
		for i := range labels {
			labels[i] = data.Intn(sizes[len(sizes)-1])
		}
		tc := &torchCase{Method: c.method, Rank: c.rank, Alpha: 8, LR: 1e-2, WeightDecay: 0.01,
			Steps: steps, Batch: batch, X: x.Data, Labels: labels}
		for _, l := range mlp.Layers {
			tc.Layers = append(tc.Layers, torchLayer{Out: l.Out, In: l.In,
				W: append([]float32(nil), l.Weight.Data...), B: append([]float32(nil), l.Bias.Data...), Frozen: l.Name == "head"})
		}
		opts := map[string]any{"rank": c.rank}
		if c.method != "vera" {
			opts["alpha"] = 8
		}
		targets := mlp.Layers[:2]
		att, err := Attach(c.method, targets, opts, nn.NewRNG(11, "method"))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range targets {
			switch a := l.Adapter.(type) {
			case *LoRA:
				tc.Layers[i].A = append([]float32(nil), a.A.Data...)
			case *DoRA:
				tc.Layers[i].A = append([]float32(nil), a.A.Data...)
			case *VeRA:
				tc.Layers[i].VA, tc.Layers[i].VB = a.A.Data, a.B.Data
			}
		}
		tr := newTrainer(t, att, func(g *nn.Graph) *nn.Tensor { return g.CrossEntropy(mlp.Forward(g, x), labels) })
		tr.opt.WeightDecay = 0.01
		for s := range steps {
			tc.goLosses = append(tc.goLosses, tr.stepNoClip(s, steps, 1e-2))
		}
		cases = append(cases, tc)
	}
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
	for _, tc := range cases {
		tl := torch[tc.Method]
		if len(tl) != steps {
			t.Errorf("%s: torch gave %d losses, want %d", tc.Method, len(tl), steps)
			continue
		}
		var worst float64
		for s, gl := range tc.goLosses {
			worst = max(worst, math.Abs(float64(gl)-tl[s])/math.Abs(tl[s]))
		}
		t.Logf("%s: loss %.5f → %.5f (torch %.5f → %.5f), max relative difference %.2g",
			tc.Method, tc.goLosses[0], tc.goLosses[steps-1], tl[0], tl[steps-1], worst)
		if worst > 1e-4 {
			t.Errorf("%s: losses differ from PyTorch's by %.3g relative (go %v, torch %v)", tc.Method, worst, tc.goLosses, tl)
		}
		if !(tc.goLosses[steps-1] < tc.goLosses[0]) {
			t.Errorf("%s: loss did not fall", tc.Method)
		}
	}
}
