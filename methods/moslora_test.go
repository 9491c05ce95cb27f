package methods

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		m := l.Adapter.(*MoSLoRA)
		return map[string][]float32{"lora_A": slices.Clone(m.A.Data), "lora_AB": slices.Clone(m.M.Data)}
	}
	addTorchCase(torchSpec{name: "moslora", method: "moslora", opts: map[string]any{"rank": 4, "alpha": 8},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "moslora-orthogonal", method: "moslora", opts: map[string]any{"rank": 6, "alpha": 12, "init": "gaussian", "mixer_init": "orthogonal"},
		lr: 1e-2, clip: 0.05, export: export})
}

// TestMoSLoRAMixer is MoSLoRA's defining property: after training, each
// layer's output is x·W0ᵀ + b + (α/r)·x·Aᵀ·Mᵀ·Bᵀ and its merged weight
// W0 + (α/r)·B·M·A, both computed here in float64 from the factors, with
// the mixer M trained away from its init; ΔW's rank stays ≤ r.
func TestMoSLoRAMixer(t *testing.T) {
	for _, mix := range []string{"kaiming", "orthogonal"} {
		t.Run(mix, func(t *testing.T) {
			const r, alpha = 4, 8.0
			m := refModels(1)[0]
			att := attachRef(t, m, "moslora", map[string]any{"rank": r, "alpha": alpha, "mixer_init": mix})
			var m0 [][]float32
			for _, l := range m.targets {
				m0 = append(m0, slices.Clone(l.Adapter.(*MoSLoRA).M.Data))
			}
			train(t, m, att, 6, 1e-2)
			for li, l := range m.targets {
				a := l.Adapter.(*MoSLoRA)
				if relDiff(a.M.Data, m0[li]) < 1e-4 {
					t.Errorf("%s: the mixer did not train", l.Name)
				}
				// BMA in float64
				bma := make([]float64, l.Out*l.In)
				for o := range l.Out {
					for p := range r {
						for q := range r {
							bm := float64(a.B.Data[o*r+p]) * float64(a.M.Data[p*r+q])
							for j := range l.In {
								bma[o*l.In+j] += bm * float64(a.A.Data[q*l.In+j])
							}
						}
					}
				}
				got := deltaOf(l)
				var worst, scale float64
				for i, v := range bma {
					worst = max(worst, math.Abs(float64(got[i])-alpha/r*v))
					scale = max(scale, math.Abs(alpha/r*v))
				}
				if scale == 0 || worst > 1e-4*scale {
					t.Errorf("%s: merged ΔW off (α/r)·B·M·A by %.3g (max %.3g)", l.Name, worst, scale)
				}
				x := nn.New(3, l.In)
				nn.NewRNG(5, "x").FillNormal(x, 0, 1)
				y := eval(func(g *nn.Graph) *nn.Tensor { return l.Forward(g, x) })
				worst, scale = 0, 0
				for s := range 3 {
					for o := range l.Out {
						v := float64(l.Bias.Data[o])
						for j := range l.In {
							v += (float64(l.Weight.Data[o*l.In+j]) + alpha/r*bma[o*l.In+j]) * float64(x.Data[s*l.In+j])
						}
						worst = max(worst, math.Abs(float64(y[s*l.Out+o])-v))
						scale = max(scale, math.Abs(v))
					}
				}
				if worst > 1e-5*max(1, scale) {
					t.Errorf("%s: output off x·(W0 + (α/r)·B·M·A)ᵀ + b by %.3g", l.Name, worst)
				}
				if rk := hadamardRank(got, l.Out, l.In); rk > r {
					t.Errorf("%s: rank(ΔW) = %d, want ≤ r = %d", l.Name, rk, r)
				}
			}
		})
	}
}

// TestMoSLoRAInit: A Kaiming-uniform (fan-in In) or N(0, 1/r²); the mixer
// Kaiming-uniform with fan-in r or orthogonal (MᵀM = I); B = 0.
func TestMoSLoRAInit(t *testing.T) {
	const r = 16
	for _, c := range []struct{ init, mix string }{{"kaiming", "kaiming"}, {"gaussian", "orthogonal"}} {
		name := fmt.Sprintf("%s/%s", c.init, c.mix)
		l := nn.NewLinear("fc", 64, 48, true, nn.NewRNG(1, "init"))
		if _, err := Attach("moslora", []*nn.Linear{l}, map[string]any{"rank": r, "init": c.init, "mixer_init": c.mix}, nn.NewRNG(1, "method")); err != nil {
			t.Fatal(err)
		}
		a := l.Adapter.(*MoSLoRA)
		if maxAbs(a.B.Data) != 0 {
			t.Errorf("%s: B ≠ 0", name)
		}
		if c.init == "kaiming" {
			if hi, bound := maxAbs(a.A.Data), 1/math.Sqrt(64); hi >= bound || hi < 0.9*bound {
				t.Errorf("%s: max |A| = %.4g, want U(±%.4g)", name, hi, bound)
			}
		} else if sd := stdOf(a.A.Data); math.Abs(sd-1.0/r) > 0.1/r {
			t.Errorf("%s: std(A) = %.4g, want %.4g", name, sd, 1.0/r)
		}
		if c.mix == "kaiming" {
			if hi, bound := maxAbs(a.M.Data), 1/math.Sqrt(r); hi >= bound || hi < 0.8*bound {
				t.Errorf("%s: max |M| = %.4g, want U(±%.4g)", name, hi, bound)
			}
			continue
		}
		for i := range r {
			for j := range r {
				var d float64
				for k := range r {
					d += float64(a.M.Data[k*r+i]) * float64(a.M.Data[k*r+j])
				}
				if want := float64(b2i(i == j)); math.Abs(d-want) > 1e-5 {
					t.Fatalf("%s: (MᵀM)[%d,%d] = %.6g, want %g", name, i, j, d, want)
				}
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
