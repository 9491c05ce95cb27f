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
		return map[string][]float32{"kr_V": slices.Clone(l.Adapter.(*KRAdapter).V.Data)}
	}
	addTorchCase(torchSpec{name: "kradapter", method: "kradapter", lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "kradapter-s0.5", method: "kradapter", opts: map[string]any{"scaling": 0.5},
		lr: 2e-2, clip: 0.05, export: export})
}

// TestKRAdapterKhatriRao is KRAdapter's defining property: on a wide, a
// square and a tall layer, with random U and V, the merged ΔW and the
// layer's output are s·(the row-wise Khatri–Rao product of U and V,
// cropped and, for a tall layer, transposed), written here entry by entry
// from the index formula in float64; ΔW has full rank min(out, in) from
// k·(2q+d) parameters, where LoRA's rank at that count is about √k.
func TestKRAdapterKhatriRao(t *testing.T) {
	for _, c := range []struct{ out, in int }{{20, 45}, {36, 36}, {50, 18}} {
		t.Run(fmt.Sprintf("%dx%d", c.out, c.in), func(t *testing.T) {
			const s = 1.5
			l := nn.NewLinear("fc", c.in, c.out, true, nn.NewRNG(1, "init"))
			if _, err := Attach("kradapter", []*nn.Linear{l}, map[string]any{"scaling": s}, nn.NewRNG(1, "method")); err != nil {
				t.Fatal(err)
			}
			m := l.Adapter.(*KRAdapter)
			k, q, d := min(c.out, c.in), m.Q, m.D
			if q*q > k || (q+1)*(q+1) <= k || q*(q+d) < max(c.out, c.in) || (d > 0 && q*(q+d-1) >= max(c.out, c.in)) {
				t.Fatalf("q = %d, d = %d for k = %d, max = %d", q, d, k, max(c.out, c.in))
			}
			nn.NewRNG(2, "U").FillNormal(m.U, 0, 1)
			want := make([]float64, c.out*c.in)
			for o := range c.out {
				for j := range c.in {
					i, col := o, j // row of KR, column of KR
					if c.out > c.in {
						i, col = j, o
					}
					want[o*c.in+j] = s * float64(m.V.Data[i*(q+d)+col/q]) * float64(m.U.Data[i*q+col%q])
				}
			}
			got := deltaOf(l)
			var worst float64
			for i, w := range want {
				worst = max(worst, math.Abs(float64(got[i])-w))
			}
			if worst > 1e-5 {
				t.Errorf("ΔW off s·KR by %.3g", worst)
			}
			x := nn.New(3, c.in)
			nn.NewRNG(3, "x").FillNormal(x, 0, 1)
			y := eval(func(g *nn.Graph) *nn.Tensor { return l.Forward(g, x) })
			worst = 0
			for n := range 3 {
				for o := range c.out {
					v := float64(l.Bias.Data[o])
					for j := range c.in {
						v += (float64(l.Weight.Data[o*c.in+j]) + want[o*c.in+j]) * float64(x.Data[n*c.in+j])
					}
					worst = max(worst, math.Abs(float64(y[n*c.out+o])-v))
				}
			}
			if worst > 1e-4 {
				t.Errorf("output off x·(W0 + s·KR)ᵀ + b by %.3g", worst)
			}
			if rk := hadamardRank(got, c.out, c.in); rk != k {
				t.Errorf("rank(ΔW) = %d, want min(out, in) = %d", rk, k)
			}
		})
	}
}

// TestKRAdapterInit: U = 0 (ΔW = 0), V uniform with torch's
// kaiming_uniform_(a=5) bound √(3/(13·(q+d))); the shapes of the
// reference MLP's fc1 (256×784): k = 256, q = 16, d = 33.
func TestKRAdapterInit(t *testing.T) {
	l := nn.NewLinear("fc1", 784, 256, true, nn.NewRNG(1, "init"))
	if _, err := Attach("kradapter", []*nn.Linear{l}, nil, nn.NewRNG(1, "method")); err != nil {
		t.Fatal(err)
	}
	m := l.Adapter.(*KRAdapter)
	if m.Q != 16 || m.D != 33 || !slices.Equal(m.U.Shape, []int{256, 16}) || !slices.Equal(m.V.Shape, []int{256, 49}) {
		t.Fatalf("q = %d, d = %d, U %v, V %v; want 16, 33, [256 16], [256 49]", m.Q, m.D, m.U.Shape, m.V.Shape)
	}
	if maxAbs(m.U.Data) != 0 {
		t.Error("U ≠ 0")
	}
	bound := math.Sqrt(3.0 / (13 * 49))
	if hi := maxAbs(m.V.Data); hi >= bound || hi < 0.95*bound {
		t.Errorf("max |V| = %.4g, want U(±%.4g)", hi, bound)
	}
}
