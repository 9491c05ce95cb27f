package nn

import "math"

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
// to ~5e-4, far beyond parity tolerances.
func (g *Graph) GELUErf(x *Tensor) *Tensor {
	y := g.unary(x, backGELUErf)
	for i, v := range x.Data {
		f := float64(v)
		y.Data[i] = float32(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
	}
	return y
}

func backGELUErf(g *Graph, n *node) {
	const invSqrt2Pi = 0.3989422804014327 // 1/√(2π)
	for i, d := range n.out.Grad {
		f := float64(n.a.Data[i])
		cdf := 0.5 * (1 + math.Erf(f/math.Sqrt2))
		n.a.Grad[i] += d * float32(cdf+f*invSqrt2Pi*math.Exp(-0.5*f*f))
	}
}
