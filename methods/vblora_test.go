package methods

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

// TestVBLoRATopKAdmixture checks VB-LoRA's defining property after
// training, treating the factor builder as a black box: every length-b
// sub-vector of A and of B (in HF's layouts) is a convex combination of
// exactly topk vectors of the bank — perturbing bank vector i by e moves
// sub-vector s by w_{s,i}·e, and the w_{s,i} are non-zero for exactly topk
// vectors, positive, summing to 1, and reproduce the sub-vector — and the
// bank is one trainable tensor, shared by every layer and listed once.
func TestVBLoRATopKAdmixture(t *testing.T) {
	for _, opts := range []map[string]any{
		{"rank": 4, "num_vectors": 24, "vector_length": 8, "topk": 1},
		{"rank": 4, "num_vectors": 24, "vector_length": 8, "topk": 2},
		{"rank": 3, "num_vectors": 16, "vector_length": 4, "topk": 3, "init_logits_std": 1.0},
	} {
		name := fmt.Sprint(opts)
		mlp, att := smallMLPTrained(t, []int{24, 48, 40, 6}, "vblora", opts, 5, 2e-2)
		k, b := opts["topk"].(int), opts["vector_length"].(int)
		bank := mlp.Layers[0].Adapter.(*VBLoRA).Bank
		ps := att.Params()
		if ps[0].T != bank {
			t.Errorf("%s: Params does not list the bank first", name)
		}
		for _, p := range ps[1:] {
			if p.T == bank || p.Name == bank.Name {
				t.Errorf("%s: the bank is listed more than once", name)
			}
		}
		h := bank.Shape[0]
		for _, l := range mlp.Layers[:2] {
			v := l.Adapter.(*VBLoRA)
			if v.Bank != bank {
				t.Errorf("%s %s: the layer has its own bank", name, l.Name)
			}
			factors := func() ([]float32, []float32) {
				a, bm := v.factors(&nn.Graph{NoGrad: true}, l)
				return slices.Clone(a.Data), slices.Clone(bm.Data)
			}
			a0, b0 := factors()
			// sub-vectors: A[p, t·b:(t+1)·b] and B[t·b:(t+1)·b, p]
			subA := func(a []float32, s, c int) float64 { return float64(a[s*b+c]) }
			subB := func(bm []float32, s, c int) float64 { return float64(bm[(s/v.Rank*b+c)*v.Rank+s%v.Rank]) }
			nA, nB := v.Rank*l.In/b, l.Out/b*v.Rank
			wA, wB := make([][]float64, nA), make([][]float64, nB)
			for s := range nA {
				wA[s] = make([]float64, h)
			}
			for s := range nB {
				wB[s] = make([]float64, h)
			}
			save := slices.Clone(bank.Data)
			for i := range h {
				for c := range b {
					bank.Data[i*b+c] += 1
				}
				a1, b1 := factors()
				copy(bank.Data, save)
				for s := range nA {
					wA[s][i] = (subA(a1, s, 0) - subA(a0, s, 0))
				}
				for s := range nB {
					wB[s][i] = (subB(b1, s, 0) - subB(b0, s, 0))
				}
			}
			for _, side := range []struct {
				name string
				w    [][]float64
				sub  func([]float32, int, int) float64
				f0   []float32
			}{{"A", wA, subA, a0}, {"B", wB, subB, b0}} {
				for s, w := range side.w {
					var sum float64
					used := 0
					for _, x := range w {
						if math.Abs(x) > 1e-6 {
							used++
							if x < 0 {
								t.Errorf("%s %s: %s sub-vector %d has a negative weight %g", name, l.Name, side.name, s, x)
							}
						}
						sum += x
					}
					if used != k {
						t.Errorf("%s %s: %s sub-vector %d mixes %d bank vectors, want topk = %d", name, l.Name, side.name, s, used, k)
					}
					if math.Abs(sum-1) > 1e-5 {
						t.Errorf("%s %s: %s sub-vector %d: weights sum to %g, want 1", name, l.Name, side.name, s, sum)
					}
					for c := range b {
						var mix float64
						for i, x := range w {
							mix += x * float64(bank.Data[i*b+c])
						}
						if got := side.sub(side.f0, s, c); math.Abs(got-mix) > 1e-5 {
							t.Errorf("%s %s: %s sub-vector %d[%d] = %g, Σ w·V = %g", name, l.Name, side.name, s, c, got, mix)
						}
					}
				}
			}
		}
	}
}

func init() {
	addTorchCase(torchSpec{name: "vblora", method: "vblora",
		opts: map[string]any{"rank": 4, "num_vectors": 32, "vector_length": 8, "topk": 2},
		lr:   1e-2, clip: 0.05,
		export: func(l *nn.Linear) map[string][]float32 {
			v := l.Adapter.(*VBLoRA)
			return map[string][]float32{"bank": slices.Clone(v.Bank.Data),
				"logits_A": slices.Clone(v.LogitsA.Data), "logits_B": slices.Clone(v.LogitsB.Data)}
		}})
}
