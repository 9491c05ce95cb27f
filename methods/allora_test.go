package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		return map[string][]float32{"lora_A": slices.Clone(l.Adapter.(*LoRA).A.Data)}
	}
	addTorchCase(torchSpec{name: "allora", method: "allora", opts: map[string]any{"rank": 4, "eta": 2},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "allora-factor", method: "allora", opts: map[string]any{"rank": 4, "eta": 3, "norm": "factor"},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "allora-gradient", method: "allora", opts: map[string]any{"rank": 4, "apply": "gradient"},
		lr: 1e-2, clip: 0.05, export: export})
}

// alloraFirstStep trains the MLP a few steps with opts, then takes one
// step with a fresh optimiser (AdamW's first step moves each element by
// lr·g/(|g| + ε) ≈ ±lr times its learning-rate multiplier) and returns
// the factors before and after it and their gradients.
func alloraFirstStep(t *testing.T, opts map[string]any, lr float32) (before, after, grads map[*nn.Tensor][]float32, at *alloraAttachment) {
	t.Helper()
	m := refModels(1)[0]
	att := attachRef(t, m, "allora", opts)
	train(t, m, att, 3, 1e-2)
	tr := newTrainer(t, att, m.loss)
	before, after, grads = map[*nn.Tensor][]float32{}, map[*nn.Tensor][]float32{}, map[*nn.Tensor][]float32{}
	g := nn.NewGraph()
	nn.ZeroGrads(tr.params)
	g.Backward(m.loss(g))
	for _, p := range tr.params {
		before[p.T], grads[p.T] = slices.Clone(p.T.Data), slices.Clone(p.T.Grad)
	}
	tr.stepper.Step(tr.params, lr)
	for _, p := range tr.params {
		after[p.T] = slices.Clone(p.T.Data)
	}
	return before, after, grads, att.(*alloraAttachment)
}

// TestALLoRARowRates: the defining property — each row θ_i of A and of B
// moves at lr/√(‖θ_i‖² + 1/η²), its norm taken before the update: on
// AdamW's first step every element with a gradient moves by that rate
// (no weight decay). The model is plain LoRA with s = 1. Planted bugs this
// catches: a column instead of a row norm, a missing square root, the
// norm after the update.
func TestALLoRARowRates(t *testing.T) {
	const lr, eta = 1e-3, 2.0
	before, after, grads, at := alloraFirstStep(t, map[string]any{"rank": 4, "eta": eta}, lr)
	for _, a := range at.adapters {
		if a.Scale != 1 || a.Dropout != 0 {
			t.Fatalf("scale %g, dropout %g: want 1 and 0", a.Scale, a.Dropout)
		}
		for _, f := range []*nn.Tensor{a.A, a.B} {
			rows, cols := f.Shape[0], f.Shape[1]
			for i := range rows {
				var sq float64
				for _, v := range before[f][i*cols : (i+1)*cols] {
					sq += float64(v) * float64(v)
				}
				want := lr / math.Sqrt(sq+1/(eta*eta))
				for j := range cols {
					k := i*cols + j
					if math.Abs(float64(grads[f][k])) < 1e-5 {
						continue
					}
					got := math.Abs(float64(after[f][k]) - float64(before[f][k]))
					if math.Abs(got-want) > 1e-3*want+1e-9 {
						t.Fatalf("%s row %d: element moved %.6g, want lr/√(‖row‖²+1/η²) = %.6g", f.Name, i, got, want)
					}
				}
			}
		}
	}
}

// TestALLoRAGradientMode: apply = "gradient" scales the clipped gradient,
// and Adam's normalisation cancels it — the first step moves every
// element by lr whatever the row norms, the reason apply = "lr" is the
// default. norm = "factor" would give one rate per matrix.
func TestALLoRAGradientMode(t *testing.T) {
	const lr = 1e-3
	before, after, grads, at := alloraFirstStep(t, map[string]any{"rank": 4, "eta": 2, "apply": "gradient"}, lr)
	for _, a := range at.adapters {
		for _, f := range []*nn.Tensor{a.A, a.B} {
			for k := range f.Data {
				if math.Abs(float64(grads[f][k])) < 1e-5 {
					continue
				}
				if got := math.Abs(float64(after[f][k]) - float64(before[f][k])); math.Abs(got-lr) > 1e-3*lr {
					t.Fatalf("%s[%d] moved %.6g, want lr = %g", f.Name, k, got, lr)
				}
			}
		}
	}
}

// TestALLoRAState: the wrapped AdamW keeps two moments per element of A
// and B (its per-row state adds up to the factors' sizes) and charges the
// trial's meter with them.
func TestALLoRAState(t *testing.T) {
	m := refModels(1)[0]
	att := attachRef(t, m, "allora", nil)
	tr := train(t, m, att, 2, 1e-3)
	want := int64(8 * nn.CountParams(att.Params()))
	if got := tr.stepper.(nn.StateSizer).StateBytes(); got != want {
		t.Errorf("state %d bytes, want %d", got, want)
	}
}
