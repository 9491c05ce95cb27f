package nn_test

import (
	"math"
	"testing"

	"peftbench/methods"
	"peftbench/nn"
)

// checkModelGrads compares the gradient of loss with respect to every
// parameter in params against central finite differences, sampling up to
// 12 elements per tensor.
func checkModelGrads(t *testing.T, params []nn.ParamRef, loss func(g *nn.Graph) *nn.Tensor) {
	t.Helper()
	const eps, rtol, atol = 1e-2, 3e-2, 1e-3
	g := nn.NewGraph()
	nn.ZeroGrads(params)
	g.Backward(loss(g))
	eval := func() float64 { return float64(loss(&nn.Graph{NoGrad: true}).Data[0]) }
	for _, p := range params {
		n := p.T.Size()
		step := max(1, n/12)
		for i := 0; i < n; i += step {
			old := p.T.Data[i]
			p.T.Data[i] = old + eps
			lp := eval()
			p.T.Data[i] = old - eps
			lm := eval()
			p.T.Data[i] = old
			num, ana := (lp-lm)/(2*eps), float64(p.T.Grad[i])
			if math.Abs(num-ana) > atol+rtol*math.Max(math.Abs(num), math.Abs(ana)) {
				t.Errorf("%s[%d]: backward %.6g, finite difference %.6g", p.Name, i, ana, num)
			}
		}
	}
}

// loraNonZeroB attaches LoRA with B drawn at random, so that A's gradient
// is not trivially zero.
func loraNonZeroB(seed uint64) func(*nn.Linear) {
	rng := nn.NewRNG(seed, "lora")
	return func(l *nn.Linear) {
		a := methods.NewLoRA(l, 3, 6, rng)
		rng.FillNormal(a.B, 0, 0.5)
		l.Adapter = a
	}
}

func TestModelGradients(t *testing.T) {
	cases := []struct {
		name   string
		attach func(*nn.Linear)
		norm   string
	}{
		{"LoRA", loraNonZeroB(3), "layer"},
		{"Full", attachFull, "layer"},
		{"Full/RMSNorm", attachFull, "rms"},
	}
	for _, c := range cases {
		t.Run("MLP/"+c.name, func(t *testing.T) {
			m := nn.NewMLP([]int{6, 8, 7, 4}, nn.NewRNG(1, "init"))
			m.Act = "gelu"
			data := nn.NewRNG(1, "data")
			x := nn.New(5, 6)
			data.FillNormal(x, 0, 1)
			labels := []int{0, 3, 2, 1, 3}
			for _, l := range m.Linears() {
				c.attach(l)
			}
			checkModelGrads(t, nn.AllParams(m), func(g *nn.Graph) *nn.Tensor {
				return g.CrossEntropy(m.Forward(g, x), labels)
			})
		})
		t.Run("Transformer/"+c.name, func(t *testing.T) {
			cfg := nn.TransformerConfig{Vocab: 7, Dim: 8, Heads: 2, Blocks: 2, Seq: 5, MLPRatio: 2, Norm: c.norm}
			m := nn.NewTransformer(cfg, nn.NewRNG(2, "init"))
			// Larger weights than GPT-2's 0.02 so every path matters.
			for _, l := range m.Linears() {
				nn.NewRNG(2, l.Name).FillNormal(l.Weight, 0, 0.4)
				c.attach(l)
			}
			nn.NewRNG(2, "emb").FillNormal(m.TokEmb, 0, 1)
			nn.SetTrainable(m.Params(), true)
			ids := []int{1, 5, 2, 6, 0, 3, 3, 4, 1, 2}
			labels := []int{5, 2, 6, 0, -1, 3, 4, 1, 2, -1}
			checkModelGrads(t, nn.AllParams(m), func(g *nn.Graph) *nn.Tensor {
				return g.CrossEntropy(m.Forward(g, ids, 2, 5), labels)
			})
		})
	}
}
