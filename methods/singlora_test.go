package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		return map[string][]float32{"singlora_A": slices.Clone(l.Adapter.(*SingLoRA).A.Data)}
	}
	// The MLP's fc1 (48×24) and fc2 (40×48) take both non-square branches.
	// Default ramp: T = 2 of the 20 steps; ramp 0.5: T = 10.
	addTorchCase(torchSpec{name: "singlora", method: "singlora", opts: map[string]any{"rank": 4},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "singlora-ramp", method: "singlora", opts: map[string]any{"rank": 4, "alpha": 16, "ramp": 0.5},
		lr: 1e-2, clip: 0.05, export: export})
}

// TestSingLoRARamp: ΔW (Merged − W0) is s·u(t)·A[:out]·A[:in]ᵀ, computed
// here in float64, with u(t) = min(t/T, 1) after t steps (0 before the
// first, so the adapted model starts at the base although A is random);
// on a square layer ΔW is symmetric, and its rank is r.
func TestSingLoRARamp(t *testing.T) {
	const total, r, alpha, ramp = 8, 4, 8.0, 0.5 // T = 4
	for _, mi := range []int{0, 1} {             // mlp (non-square fc1), transformer (square q)
		m := refModels(1)[mi]
		att := attachRef(t, m, "singlora", map[string]any{"rank": r, "alpha": alpha, "ramp": ramp})
		tr := newTrainer(t, att, m.loss)
		for step := 0; step <= total; step++ {
			u := min(float64(step)/4, 1)
			for _, l := range m.targets[:2] {
				a := l.Adapter.(*SingLoRA)
				got := deltaOf(l)
				var worst, scale float64
				for i := range l.Out {
					for j := range l.In {
						var aa float64
						for p := range r {
							aa += float64(a.A.Data[i*r+p]) * float64(a.A.Data[j*r+p])
						}
						want := alpha / r * u * aa
						worst = max(worst, math.Abs(float64(got[i*l.In+j])-want))
						scale = max(scale, math.Abs(want))
					}
				}
				if step == 0 && maxAbs(got) != 0 {
					t.Fatalf("%s %s: ΔW ≠ 0 before the first step", m.name, l.Name)
				}
				if worst > 1e-5*max(scale, 1e-3) {
					t.Errorf("%s %s after %d steps: ΔW off (α/r)·u·A[:out]·A[:in]ᵀ (u = %g) by %.3g (max %.3g)", m.name, l.Name, step, u, worst, scale)
				}
				if step == total && l.Out == l.In {
					var asym float64
					for i := range l.Out {
						for j := range i {
							asym = max(asym, math.Abs(float64(got[i*l.In+j]-got[j*l.In+i])))
						}
					}
					if asym > 1e-6*scale {
						t.Errorf("%s %s: square ΔW not symmetric (%.3g)", m.name, l.Name, asym)
					}
					if rk := hadamardRank(got, l.Out, l.In); rk != r {
						t.Errorf("%s %s: rank(ΔW) = %d, want r = %d", m.name, l.Name, rk, r)
					}
				}
			}
			if step < total {
				tr.step(step, total, 1e-2)
			}
		}
	}
}

// TestSingLoRAInit: A is max(out, in)×r, U(±1/√in); one A per layer.
func TestSingLoRAInit(t *testing.T) {
	m := refModels(1)[0]
	attachRef(t, m, "singlora", map[string]any{"rank": 8})
	for _, l := range m.targets {
		a := l.Adapter.(*SingLoRA).A
		if a.Shape[0] != max(l.Out, l.In) || a.Shape[1] != 8 {
			t.Errorf("%s: A is %v, want %d×8", l.Name, a.Shape, max(l.Out, l.In))
		}
		if b, hi := 1/math.Sqrt(float64(l.In)), maxAbs(a.Data); hi >= b || hi < 0.9*b {
			t.Errorf("%s: max |A| = %.4g, want U(±%.4g)", l.Name, hi, b)
		}
	}
}
