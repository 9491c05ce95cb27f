package methods

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"peftbench/nn"
)

// TestLNTuningTrainsOnlyNormCopies checks LN tuning's defining property on
// a small transformer (LayerNorm and RMSNorm), for the default and other
// target_modules: after training, every base tensor (linears, embeddings,
// the base norms) is bit for bit what it was; exactly the targeted norms
// carry a trained copy whose γ (and β) moved; the trainable count is the
// formula's and the norms' widths; and merging (the copy swapped in)
// reproduces the adapted model's outputs exactly.
func TestLNTuningTrainsOnlyNormCopies(t *testing.T) {
	for _, c := range []struct {
		name, norm, target string
		want               []string
	}{
		{"defaults", "layer", "", []string{"blocks.0.ln1", "blocks.0.ln2", "blocks.1.ln1", "blocks.1.ln2", "ln_f"}},
		{"blocks", "layer", `blocks\.\d+\.ln[12]`, []string{"blocks.0.ln1", "blocks.0.ln2", "blocks.1.ln1", "blocks.1.ln2"}},
		{"final", "layer", "ln_f", []string{"ln_f"}},
		{"ln2 only", "layer", `.*\.ln2`, []string{"blocks.0.ln2", "blocks.1.ln2"}},
		{"rms", "rms", "", []string{"blocks.0.ln1", "blocks.0.ln2", "blocks.1.ln1", "blocks.1.ln2", "ln_f"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := nn.TransformerConfig{Vocab: 12, Dim: 16, Heads: 2, Blocks: 2, Seq: 8, Norm: c.norm}
			tf := nn.NewTransformer(cfg, nn.NewRNG(3, "init"))
			data := nn.NewRNG(3, "data")
			const batch, seq = 4, 8
			ids := make([]int, batch*seq)
			next := make([]int, batch*seq)
			for i := range ids {
				ids[i] = data.Intn(cfg.Vocab)
			}
			for i := range next {
				next[i] = data.Intn(cfg.Vocab)
			}
			out := func(g *nn.Graph) *nn.Tensor { return tf.Forward(g, ids, batch, seq) }
			loss := func(g *nn.Graph) *nn.Tensor { return g.CrossEntropy(out(g), next) }
			before := map[string][]float32{}
			for k, v := range tf.StateDict() {
				before[k] = slices.Clone(v.Data)
			}
			o, err := ResolveOptions("ln-tuning", 0, map[string]any{"target_modules": c.target})
			if err != nil {
				t.Fatal(err)
			}
			base := eval(out)
			att, err := AttachNormsResolved("ln-tuning", tf.Norms(), o, nn.NewRNG(3, "method"))
			if err != nil {
				t.Fatal(err)
			}
			if d := relDiff(eval(out), base); d != 0 {
				t.Errorf("step 0 is %.3g from the base model", d)
			}
			if len(att.Layers()) != 0 {
				t.Errorf("adapts %d linear layers", len(att.Layers()))
			}
			wantN := 0
			for _, n := range tf.Norms() {
				if slices.Contains(c.want, n.Name) {
					wantN += n.Dim()
					if n.Bias != nil {
						wantN += n.Dim()
					}
				}
			}
			formula, _ := TrainableNormParamsResolved("ln-tuning", NormShapes(tf.Norms()), o)
			if got := nn.CountParams(att.Params()); got != wantN || formula != int64(wantN) {
				t.Errorf("%d trainable, formula %d, want %d", got, formula, wantN)
			}
			tr := newTrainer(t, att, loss)
			first := tr.step(0, 8, 1e-2)
			for s := 1; s < 8; s++ {
				tr.step(s, 8, 1e-2)
			}
			if last := eval(loss)[0]; !(last < first) {
				t.Errorf("loss %v after training, %v before", last, first)
			}
			for k, v := range tf.StateDict() {
				if !slices.Equal(v.Data, before[k]) {
					t.Errorf("base tensor %s changed", k)
				}
			}
			var tuned []string
			for _, n := range tf.Norms() {
				if n.Tuned == nil {
					continue
				}
				tuned = append(tuned, n.Name)
				if slices.Equal(n.Tuned.Weight.Data, n.Weight.Data) {
					t.Errorf("%s: γ' did not train", n.Name)
				}
				if (n.Bias == nil) != (n.Tuned.Bias == nil) || n.Bias != nil && slices.Equal(n.Tuned.Bias.Data, n.Bias.Data) {
					t.Errorf("%s: β' did not train (or does not match the base's bias)", n.Name)
				}
			}
			if !slices.Equal(tuned, c.want) {
				t.Errorf("tuned norms %v, want %v", tuned, c.want)
			}
			adapted := eval(out)
			for _, n := range tf.Norms() {
				n.Merge()
				if n.Tuned != nil {
					t.Errorf("%s: still tuned after Merge", n.Name)
				}
			}
			if d := relDiff(eval(out), adapted); d != 0 {
				t.Errorf("merged model is %.3g from the adapted one", d)
			}
		})
	}
}

// TestLNTuningRefusals: linear layers, a model without norms and a
// target_modules that matches no norm (or does not compile) are errors.
func TestLNTuningRefusals(t *testing.T) {
	mlp := nn.NewMLP([]int{4, 8, 2}, nn.NewRNG(1, "init"))
	if _, err := Attach("ln-tuning", mlp.Layers, nil, nn.NewRNG(1, "m")); err == nil {
		t.Error("Attach on linear layers: no error")
	}
	o, _ := ResolveOptions("ln-tuning", 0, nil)
	if err := CheckNorms("ln-tuning", o, nil); err == nil {
		t.Error("no norms: no error")
	}
	norms := []NormShape{{Name: "blocks.0.ln1", Dim: 4, Bias: true}, {Name: "ln_f", Dim: 4, Bias: true}}
	for _, p := range []string{"ln1", "(", "blocks"} {
		o, _ := ResolveOptions("ln-tuning", 0, map[string]any{"target_modules": p})
		if err := CheckNorms("ln-tuning", o, norms); err == nil {
			t.Errorf("target_modules %q: no error", p)
		}
	}
	if err := CheckNorms("lora", o, norms); err == nil {
		t.Error("lora as a norm tuner: no error")
	}
}

// lnCase is one LN-tuning cross-check: a small model x → norm1 → fc1 →
// ReLU → norm2 → head, trained here and in testdata/torch/ln_tuning.py.
type lnCase struct {
	Name          string         `json:"name"`
	TargetModules *string        `json:"target_modules"`
	LR            float64        `json:"lr"`
	WeightDecay   float64        `json:"weight_decay"`
	Clip          float64        `json:"clip"`
	Steps         int            `json:"steps"`
	Batch         int            `json:"batch"`
	Features      int            `json:"features"`
	X             []float32      `json:"x"`
	Labels        []int          `json:"labels"`
	Norms         []lnCaseNorm   `json:"norms"`
	Linears       []lnCaseLinear `json:"linears"`
}

type lnCaseNorm struct {
	Name   string    `json:"name"`
	Weight []float32 `json:"weight"`
	Bias   []float32 `json:"bias"` // null for RMSNorm
}

type lnCaseLinear struct {
	Name string    `json:"name"`
	Out  int       `json:"out"`
	In   int       `json:"in"`
	W    []float32 `json:"W"`
	B    []float32 `json:"b"`
}

// runTorchScript runs testdata/torch/<script> on cases and returns its
// losses by case name.
func runTorchScript(t *testing.T, py, script string, cases any) map[string][]float64 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cases.json")
	buf, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join("testdata", "torch", script), path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.Bytes())
	}
	var res map[string][]float64
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s output: %v\n%s", script, err, out)
	}
	return res
}

// TestLNTuningTorch cross-checks LN tuning against HF PEFT's LNTuningLayer
// re-implemented in PyTorch (testdata/torch/ln_tuning.py): LayerNorm and
// RMSNorm, every norm or one, 20 AdamW steps (weight decay 0.01, which
// norm tensors do not take) with clipping acting; the losses agree to
// 1e-4 relative and fall. The MLP of TestTorchCrossCheck has no norms, so
// LN tuning has this case instead (torchElsewhere).
func TestLNTuningTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: PyTorch cross-check skipped")
	}
	py := python(t)
	const steps, batch, in, hidden, classes = 20, 32, 24, 48, 6
	norm2 := "norm2"
	var cases []*lnCase
	var goLosses [][]float32
	for _, c := range []struct {
		name   string
		rms    bool
		target *string
		clip   float32
	}{
		{"layernorm", false, nil, 0.05},
		{"rmsnorm", true, nil, 0.05},
		{"layernorm-norm2", false, &norm2, 0.05},
	} {
		rng := nn.NewRNG(21, "init")
		mkNorm := func(name string, d int) *nn.Norm {
			n := &nn.Norm{Name: name, Weight: nn.New(d)}
			rng.FillNormal(n.Weight, 0, 0.2)
			for i := range n.Weight.Data {
				n.Weight.Data[i]++
			}
			if !c.rms {
				n.Bias = nn.New(d)
				rng.FillNormal(n.Bias, 0, 0.2)
			}
			return n
		}
		n1, n2 := mkNorm("norm1", in), mkNorm("norm2", hidden)
		fc1 := nn.NewLinear("fc1", in, hidden, true, rng)
		head := nn.NewLinear("head", hidden, classes, true, rng)
		data := nn.NewRNG(21, "data")
		x := nn.New(batch, in)
		data.FillNormal(x, 0, 1)
		labels := make([]int, batch)
		for i := range labels {
			labels[i] = data.Intn(classes)
		}
		lc := &lnCase{Name: c.name, TargetModules: c.target, LR: 1e-2, WeightDecay: 0.01, Clip: float64(c.clip),
			Steps: steps, Batch: batch, Features: in, X: x.Data, Labels: labels}
		for _, n := range []*nn.Norm{n1, n2} {
			cn := lnCaseNorm{Name: n.Name, Weight: slices.Clone(n.Weight.Data)}
			if n.Bias != nil {
				cn.Bias = slices.Clone(n.Bias.Data)
			}
			lc.Norms = append(lc.Norms, cn)
		}
		for _, l := range []*nn.Linear{fc1, head} {
			lc.Linears = append(lc.Linears, lnCaseLinear{Name: l.Name, Out: l.Out, In: l.In, W: slices.Clone(l.Weight.Data), B: slices.Clone(l.Bias.Data)})
		}
		opts := map[string]any{}
		if c.target != nil {
			opts["target_modules"] = *c.target
		}
		o, err := ResolveOptions("ln-tuning", 0, opts)
		if err != nil {
			t.Fatal(err)
		}
		att, err := AttachNormsResolved("ln-tuning", []*nn.Norm{n1, n2}, o, nn.NewRNG(21, "method"))
		if err != nil {
			t.Fatal(err)
		}
		loss := func(g *nn.Graph) *nn.Tensor {
			h := fc1.Forward(g, n1.Forward(g, x))
			return g.CrossEntropy(head.Forward(g, n2.Forward(g, g.ReLU(h))), labels)
		}
		tr := newTrainer(t, att, loss)
		tr.opt.WeightDecay = 0.01
		var ls []float32
		clipped := 0
		for s := range steps {
			l, norm := tr.runNorm(s, steps, float32(lc.LR), c.clip)
			ls = append(ls, l)
			if norm > float64(c.clip) {
				clipped++
			}
		}
		if clipped < steps/2 {
			t.Errorf("%s: gradient clipping acted in %d of %d steps; lower the clip", c.name, clipped, steps)
		}
		cases = append(cases, lc)
		goLosses = append(goLosses, ls)
	}
	torch := runTorchScript(t, py, "ln_tuning.py", cases)
	for i, lc := range cases {
		tl, gl := torch[lc.Name], goLosses[i]
		if len(tl) != steps {
			t.Fatalf("%s: torch gave %d losses, want %d", lc.Name, len(tl), steps)
		}
		var worst float64
		for s := range gl {
			worst = max(worst, math.Abs(float64(gl[s])-tl[s])/math.Abs(tl[s]))
		}
		t.Logf("%s: loss %.5f → %.5f (torch %.5f → %.5f), max relative difference %.2g", lc.Name, gl[0], gl[steps-1], tl[0], tl[steps-1], worst)
		if worst > 1e-4 {
			t.Errorf("%s: losses differ from PyTorch's by %.3g relative\ngo    %v\ntorch %v", lc.Name, worst, gl, tl)
		}
		if !(gl[steps-1] < gl[0]) {
			t.Errorf("%s: loss did not fall", lc.Name)
		}
	}
}

func init() { maps.Copy(torchElsewhere, map[string]string{"ln-tuning": "TestLNTuningTorch"}) }
