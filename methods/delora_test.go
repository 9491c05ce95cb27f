package methods

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

// deloraFrob returns ‖x‖ in float64.
func deloraFrob(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// TestDeLoRABoundary: after training (λ trained too), the update obeys
// DeLoRA's boundary, derived in the DeLoRA doc comment:
//
//	‖ΔW‖_F ≤ (|λ|/r)·Σ_i ‖diag(w)·a_i‖/‖a_i‖ ≤ |λ|·max_j ‖W0[:, j]‖ ≤ |λ|·‖W0‖_F,
//
// with equality in the first for r = 1; and the update's scale is λ: ΔW is
// linear in λ at fixed A and B.
func TestDeLoRABoundary(t *testing.T) {
	for _, c := range []map[string]any{
		{"rank": 1},
		{"rank": 8},
		{"rank": 32, "delora_lambda": 2},
		{"rank": 4, "init_weights": false},
	} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			o, err := ResolveOptions("delora", 0, c)
			if err != nil {
				t.Fatal(err)
			}
			m := refModels(1)[0]
			att := attachRef(t, m, "delora", c)
			train(t, m, att, 5, 1e-2)
			for _, l := range m.targets {
				d := l.Adapter.(*DeLoRA)
				r, in := d.Rank, l.In
				lam := math.Abs(float64(d.Lambda.Data[0]))
				if d.Lambda.Data[0] == float32(o.Float("delora_lambda")) {
					t.Errorf("%s: λ did not train", l.Name)
				}
				dw := deloraFrob(sub(l.Merged(), l.Weight.Data))
				// w_j = ‖W0[:, j]‖, from W0
				w := make([]float64, in)
				for o := range l.Out {
					for j := range in {
						v := float64(l.Weight.Data[o*in+j])
						w[j] += v * v
					}
				}
				for j := range w {
					w[j] = math.Sqrt(w[j])
				}
				var terms, wmax, w0 float64
				for i := range r {
					var na, nda float64
					for j := range in {
						a := float64(d.A.Data[i*in+j])
						na += a * a
						nda += a * a * w[j] * w[j]
					}
					terms += math.Sqrt(nda) / math.Sqrt(na)
				}
				terms *= lam / float64(r)
				for _, v := range w {
					wmax = max(wmax, v)
				}
				w0 = deloraFrob(l.Weight.Data)
				tol := 1e-5 * dw
				if dw == 0 {
					t.Fatalf("%s: ΔW = 0 after training", l.Name)
				}
				if dw > terms+tol || terms > lam*wmax+tol || lam*wmax > lam*w0 {
					t.Errorf("%s: ‖ΔW‖ = %g, (|λ|/r)·Σ‖Da_i‖/‖a_i‖ = %g, |λ|·max_j‖W0[:,j]‖ = %g, |λ|·‖W0‖ = %g: not in order",
						l.Name, dw, terms, lam*wmax, lam*w0)
				}
				if r == 1 && math.Abs(dw-terms) > tol {
					t.Errorf("%s: r = 1: ‖ΔW‖ = %g, want (|λ|/r)·‖Da‖/‖a‖ = %g", l.Name, dw, terms)
				}
				// ΔW is linear in λ.
				before := sub(l.Merged(), l.Weight.Data)
				d.Lambda.Data[0] *= 3
				after := sub(l.Merged(), l.Weight.Data)
				d.Lambda.Data[0] /= 3
				for i := range before {
					before[i] *= 3
				}
				// tolerance: relative, plus the rounding of W0 + ΔW − W0
				if e := maxAbs(sub(after, before)); e > 1e-5*maxAbs(before)+1e-6*maxAbs(l.Weight.Data) {
					t.Errorf("%s: ΔW(3λ) is off 3·ΔW(λ) by %g", l.Name, e)
				}
			}
		})
	}
}

func deloraExport(l *nn.Linear) map[string][]float32 {
	d := l.Adapter.(*DeLoRA)
	return map[string][]float32{"delora_A": slices.Clone(d.A.Data), "delora_B": slices.Clone(d.B.Data)}
}

func init() {
	addTorchCase(torchSpec{name: "delora", method: "delora", opts: map[string]any{"rank": 4, "delora_lambda": 2},
		lr: 1e-2, clip: 0.05, export: deloraExport})
	addTorchCase(torchSpec{name: "delora-false", method: "delora", opts: map[string]any{"rank": 4, "init_weights": false},
		lr: 1e-3, clip: 0.05, export: deloraExport})
}

// TestDeLoRADropoutOnlyWhileTraining: module_dropout (HF: dropout on the
// adapter path's input) acts under SetTraining(rng) only.
func TestDeLoRADropoutOnlyWhileTraining(t *testing.T) {
	inputDropoutActsOnlyInTraining(t, "delora", map[string]any{"module_dropout": 0.5}, true)
}
