package nn

import (
	"math"
	"testing"
)

// TestCustomMatchesBuiltinOps checks that a Func's forward and backward
// take part in the tape like a built-in op: a custom x ⊙ y gives the values
// and gradients of Mul, including for an input without a gradient.
func TestCustomMatchesBuiltinOps(t *testing.T) {
	mul := &Func{
		Name: "mul",
		Forward: func(y []float32, in []*Tensor) {
			for i := range y {
				y[i] = in[0].Data[i] * in[1].Data[i]
			}
		},
		Backward: func(dy []float32, in []*Tensor) {
			for k, j := range []int{1, 0} {
				if in[k].Grad == nil {
					continue
				}
				for i, d := range dy {
					in[k].Grad[i] += d * in[j].Data[i]
				}
			}
		},
	}
	rng := NewRNG(1, "custom")
	for _, frozenY := range []bool{false, true} {
		x, y := Param("x", 3, 4), Param("y", 3, 4)
		rng.FillNormal(x, 0, 1)
		rng.FillNormal(y, 0, 1)
		if frozenY {
			y.SetRequiresGrad(false)
		}
		grads := func(f func(g *Graph) *Tensor) ([]float32, []float32, []float32) {
			x.ZeroGrad()
			y.ZeroGrad()
			g := NewGraph()
			out := f(g)
			v := append([]float32(nil), out.Data...)
			g.Backward(g.Sum(g.Mul(out, out)))
			return v, append([]float32(nil), x.Grad...), append([]float32(nil), y.Grad...)
		}
		v1, gx1, gy1 := grads(func(g *Graph) *Tensor { return g.Mul(x, y) })
		v2, gx2, gy2 := grads(func(g *Graph) *Tensor { return g.Custom(mul, []int{3, 4}, x, y) })
		for _, p := range [][2][]float32{{v1, v2}, {gx1, gx2}, {gy1, gy2}} {
			for i := range p[0] {
				if math.Abs(float64(p[0][i]-p[1][i])) > 1e-6 {
					t.Fatalf("frozen y %v: custom op %v, built-in %v", frozenY, p[1], p[0])
				}
			}
		}
	}
}
