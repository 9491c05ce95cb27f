package lm

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"peftbench/lmfolder"
	"peftbench/methods"
	"peftbench/nn"
	"peftbench/safetensors"
)

// loraSetup is setup.json, the shared inputs lora_train.py writes.
type loraSetup struct {
	Rank                         int
	Alpha, LR, Beta1, Beta2, Eps float64
	WeightDecay                  float64 `json:"weight_decay"`
	MaxNorm                      float64 `json:"max_norm"`
	Steps, Batch, Seq            int
	IDs, Labels                  [][]int
	Targets                      []string
}

// loraResult is result.json, what lora_train.py's training gave.
type loraResult struct {
	Losses    []float64
	GradNorms []float64 `json:"grad_norms"`
	Clipped   int
}

// writeTiny writes a small F32 checkpoint of family with lmfolder, its
// weights drawn wider than HF's 0.02 so that the adapters' effect is not
// lost in rounding.
func writeTiny(t *testing.T, family string) string {
	t.Helper()
	spec, err := lmfolder.Defaults(family)
	if err != nil {
		t.Fatal(err)
	}
	spec.DType, spec.Seed, spec.InitStd, spec.Vocab, spec.Seq = safetensors.F32, 24, 0.15, 300, 64
	dir := filepath.Join(t.TempDir(), family)
	if _, _, err := lmfolder.Write(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runPython runs a script of testdata with args, skipping t when python or
// torch is missing (exit status 3).
func runPython(t *testing.T, script string, args ...string) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skip(python + " not found: the Python reference cannot run")
	}
	out, err := exec.Command(python, append([]string{filepath.Join("testdata", script)}, args...)...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		t.Skip("torch is not importable by " + python + ": " + string(out))
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	t.Logf("%s: %s", script, out)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// attachLoRA attaches the registered lora method to m's attention and MLP
// linears (the head excluded) and sets its factors from the file init
// (<module>.lora_A.weight, .lora_B.weight).
func attachLoRA(t *testing.T, m *Model, rank int, alpha float64, init string) methods.Attachment {
	t.Helper()
	var targets []*nn.Linear
	for _, l := range m.Linears() {
		if l != m.Head {
			targets = append(targets, l)
		}
	}
	att, err := methods.Attach("lora", targets, map[string]any{"rank": rank, "alpha": alpha}, nn.NewRNG(1, "method"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(init)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range targets {
		a := l.Adapter.(*methods.LoRA)
		for _, p := range []struct {
			name string
			t    *nn.Tensor
		}{{l.Name + ".lora_A.weight", a.A}, {l.Name + ".lora_B.weight", a.B}} {
			data, shape, err := f.Tensor(p.name)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(shape, p.t.Shape) {
				t.Fatalf("%s: shape %v in %s, the adapter has %v", p.name, shape, init, p.t.Shape)
			}
			copy(p.t.Data, data)
		}
	}
	return att
}

// relFro is ‖a−b‖ / ‖b‖ (Frobenius).
func relFro(a, b []float32) float64 {
	var d, s float64
	for i := range b {
		x := float64(a[i]) - float64(b[i])
		d += x * x
		s += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / s)
}

// relMax is max|a−b| / max|b|.
func relMax(a, b []float32) float64 {
	var d, s float64
	for i := range b {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = max(s, math.Abs(float64(b[i])))
	}
	return d / s
}

// clipAfterStep plants the "clip after the optimiser step" bug in
// trainLoRA (TestLoRATrainingMatchesPython must then fail).
var clipAfterStep = false

// trainLoRA runs the steps of setup on m with att: lm.Model.Loss,
// backward, nn.ClipGradNorm, nn.AdamW, in the order package train uses. It
// returns each step's loss (before its update) and gradient norm.
func trainLoRA(m *Model, att methods.Attachment, s loraSetup) (losses, norms []float64) {
	params := att.Params()
	opt := &nn.AdamW{Beta1: float32(s.Beta1), Beta2: float32(s.Beta2), Eps: float32(s.Eps), WeightDecay: float32(s.WeightDecay)}
	g := nn.NewGraph()
	for step := range s.Steps {
		g.Reset()
		nn.ZeroGrads(params)
		l := m.Loss(g, s.IDs[step], s.Labels[step], s.Batch, s.Seq)
		g.Backward(l)
		var norm float32
		if !clipAfterStep {
			norm = nn.ClipGradNorm(params, float32(s.MaxNorm))
		}
		opt.Step(params, float32(s.LR))
		if clipAfterStep {
			norm = nn.ClipGradNorm(params, float32(s.MaxNorm))
		}
		losses = append(losses, float64(l.Data[0]))
		norms = append(norms, float64(norm))
	}
	return losses, norms
}

// TestLoRATrainingMatchesPython is the second half of acceptance 1: on a
// tiny F32 checkpoint of each family (lmfolder), 20 steps of the
// registered lora method on every attention and MLP linear (rank 4,
// α = 8), with AdamW (weight decay 0.01) and global-norm clipping (max norm: lora_train.py's
// choice, the median norm of a dry run, so some steps clip and some not), give the loss of every step and the final LoRA
// factors of lora_train.py's independent torch training (run in float64)
// to 1e-4 relative: |Δloss|/loss per step, ‖ΔA‖/‖A‖ and ‖ΔB‖/‖B‖ per
// factor (Frobenius). The elementwise max|Δ|/max|w| is logged, not gated: an
// element whose first gradient is within float32 rounding of zero (GPT-2's
// transformer.h.1.attn.c_attn B[36,2]: 8.5e-8 against a largest 0.2) takes
// an Adam first step g/(|g|+ε) that no float32 engine reproduces to 1e-4
// (measured 1.6e-4 elementwise there, against 2e-6 in the other families).
// The initial factors, token batches and hyperparameters are lora_train.py's
// shared inputs (setup.json, init.safetensors).
//
// Measured (2-core CPU): losses within 4e-7, final factors within 2.1e-5
// (gpt2), 4.6e-7 (neox), 9.8e-7 (llama), 1.2e-6 (qwen2); 9 or 10 of the 20
// steps clipped.
//
// Planted bugs, each confirmed to fail this test in all four families
// (largest loss / factor error measured):
//   - LoRA scale α instead of α/r (methods/lora.go): losses 0.05–0.15,
//     factors 0.6–0.77;
//   - AdamW without bias correction (nn/optim.go): losses 0.06–0.12,
//     factors 2.4–3.0;
//   - clipping after the optimiser step instead of before (clipAfterStep):
//     losses 1.4e-3–5.8e-3, factors 0.016–0.05.
func TestLoRATrainingMatchesPython(t *testing.T) {
	if testing.Short() {
		t.Skip("trains four tiny checkpoints against torch")
	}
	for _, family := range lmfolder.Families {
		t.Run(family, func(t *testing.T) {
			dir := writeTiny(t, family)
			ref := t.TempDir()
			runPython(t, "lora_train.py", dir, ref)
			var s loraSetup
			var want loraResult
			readJSON(t, filepath.Join(ref, "setup.json"), &s)
			readJSON(t, filepath.Join(ref, "result.json"), &want)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			att := attachLoRA(t, m, s.Rank, s.Alpha, filepath.Join(ref, "init.safetensors"))
			var names []string
			for _, l := range att.Layers() {
				names = append(names, l.Name)
			}
			if !slices.Equal(names, s.Targets) {
				t.Fatalf("targeted %v, lora_train.py %v", names, s.Targets)
			}
			losses, norms := trainLoRA(m, att, s)
			var lossRel, normRel float64
			for i := range losses {
				lossRel = max(lossRel, math.Abs(losses[i]-want.Losses[i])/math.Abs(want.Losses[i]))
				normRel = max(normRel, math.Abs(norms[i]-want.GradNorms[i])/want.GradNorms[i])
			}
			f, err := safetensors.Open(filepath.Join(ref, "final.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var factorRel, elemRel float64
			var worst string
			for _, p := range att.Params() {
				w, _, err := f.Tensor(p.Name)
				if err != nil {
					t.Fatal(err)
				}
				elemRel = max(elemRel, relMax(p.T.Data, w))
				if r := relFro(p.T.Data, w); r > factorRel {
					factorRel, worst = r, p.Name
				}
			}
			t.Logf("%s: loss %.5f → %.5f (torch %.5f → %.5f), clipped %d of %d steps; relative error: losses %.2g, grad norms %.2g, final factors %.2g (%s; elementwise max|Δ|/max|w| %.2g)",
				family, losses[0], losses[len(losses)-1], want.Losses[0], want.Losses[len(want.Losses)-1], want.Clipped, s.Steps, lossRel, normRel, factorRel, worst, elemRel)
			if want.Clipped == 0 || want.Clipped == s.Steps {
				t.Errorf("clipping acted on %d of %d steps: the test wants some clipped and some not", want.Clipped, s.Steps)
			}
			if lossRel > 1e-4 || factorRel > 1e-4 {
				t.Errorf("Go's training differs from lora_train.py's: losses %.3g, final factors %.3g relative (want ≤ 1e-4)", lossRel, factorRel)
			}
		})
	}
}
