package nn

import (
	"math"

	"peftbench/kernels"
)

// SiLU returns x·σ(x) element-wise (swish; Llama's and Qwen2's hidden_act
// "silu").
func (g *Graph) SiLU(x *Tensor) *Tensor {
	y := g.unary(x, backSiLU)
	for i, v := range x.Data {
		y.Data[i] = float32(float64(v) / (1 + math.Exp(-float64(v))))
	}
	return y
}

func backSiLU(g *Graph, n *node) {
	for i, d := range n.out.Grad {
		v := float64(n.a.Data[i])
		s := 1 / (1 + math.Exp(-v))
		n.a.Grad[i] += d * float32(s*(1+v*(1-s)))
	}
}

// GELUErf is the exact GELU, x·Φ(x) = ½x(1+erf(x/√2)): torch's
// gelu(approximate="none") and transformers' "gelu" (GPT-NeoX, Pythia).
// GELU is the tanh approximation ("gelu_new", GPT-2); the two differ by up
// to ~5e-4, far beyond parity tolerances. It computes in float32
// (kernels.GELUErf, within 2e-6 relative of the float64 formula), element
// by element, split over goroutines for large tensors.
func (g *Graph) GELUErf(x *Tensor) *Tensor {
	y := g.unary(x, backGELUErf)
	elementwise(len(x.Data), func(lo, hi int) { kernels.GELUErf(y.Data[lo:hi], x.Data[lo:hi]) })
	return y
}

func backGELUErf(g *Graph, n *node) {
	elementwise(len(n.a.Data), func(lo, hi int) {
		kernels.GELUErfBackwardAdd(n.a.Grad[lo:hi], n.a.Data[lo:hi], n.out.Grad[lo:hi])
	})
}

// elementwise runs fn over [0, n) split in blocks of at least 1<<14
// elements over goroutines; for element-wise work, whose results do not
// depend on the split.
func elementwise(n int, fn func(lo, hi int)) {
	const block = 1 << 14
	if n < 2*block {
		fn(0, n)
		return
	}
	parallelFor((n+block-1)/block, func(lo, hi int) { fn(lo*block, min(hi*block, n)) })
}
