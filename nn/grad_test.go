package nn

import (
	"fmt"
	"math"
	"testing"
)

// randParam returns a trainable tensor with N(0,1) entries.
func randParam(rng *RNG, shape ...int) *Tensor {
	t := Param("x", shape...)
	rng.FillNormal(t, 0, 1)
	return t
}

// randPos returns a trainable tensor with entries in [0.5, 2).
func randPos(rng *RNG, shape ...int) *Tensor {
	t := Param("x", shape...)
	rng.FillUniform(t, 0.5, 2)
	return t
}

// awayFromZero pushes entries to |x| ≥ 0.1 so ReLU's kink is not crossed.
func awayFromZero(t *Tensor) *Tensor {
	for i, v := range t.Data {
		if v >= 0 && v < 0.1 {
			t.Data[i] = v + 0.1
		} else if v < 0 && v > -0.1 {
			t.Data[i] = v - 0.1
		}
	}
	return t
}

// gradCheck compares the gradients Backward gives for the scalar
// L = Σ w⊙f(inputs) (w fixed random) with central finite differences,
// over up to maxPer elements of every input.
func gradCheck(t *testing.T, name string, inputs []*Tensor, f func(g *Graph, in []*Tensor) *Tensor) {
	t.Helper()
	const (
		eps    = 1e-2
		rtol   = 2e-2
		atol   = 2e-3
		maxPer = 24
	)
	g := NewGraph()
	out := f(g, inputs)
	w := make([]float32, out.Size())
	wr := NewRNG(99, "weights")
	for i := range w {
		w[i] = wr.Uniform(-1, 1)
	}
	loss := func() float64 {
		ng := &Graph{NoGrad: true}
		y := f(ng, inputs)
		var s float64
		for i, v := range y.Data {
			s += float64(w[i]) * float64(v)
		}
		return s
	}
	for _, in := range inputs {
		in.ZeroGrad()
	}
	l := g.Sum(g.Mul(out, g.Const(w, out.Shape...)))
	g.Backward(l)
	for k, in := range inputs {
		if in.Grad == nil {
			continue
		}
		step := max(1, in.Size()/maxPer)
		for i := 0; i < in.Size(); i += step {
			old := in.Data[i]
			in.Data[i] = old + eps
			lp := loss()
			in.Data[i] = old - eps
			lm := loss()
			in.Data[i] = old
			num := (lp - lm) / (2 * eps)
			ana := float64(in.Grad[i])
			if math.Abs(num-ana) > atol+rtol*math.Max(math.Abs(num), math.Abs(ana)) {
				t.Errorf("%s: input %d element %d: backward %.6g, finite difference %.6g", name, k, i, ana, num)
			}
		}
	}
}

func TestOpGradients(t *testing.T) {
	r := NewRNG(1, "test")
	p := func(shape ...int) *Tensor { return randParam(r, shape...) }
	type tc struct {
		name string
		in   []*Tensor
		f    func(g *Graph, x []*Tensor) *Tensor
	}
	cases := []tc{
		{"Add", []*Tensor{p(3, 4), p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Add(x[0], x[1]) }},
		{"Sub", []*Tensor{p(3, 4), p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Sub(x[0], x[1]) }},
		{"Mul", []*Tensor{p(3, 4), p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Mul(x[0], x[1]) }},
		{"Scale", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Scale(x[0], -1.7) }},
		{"AddRow", []*Tensor{p(5, 4), p(4)}, func(g *Graph, x []*Tensor) *Tensor { return g.AddRow(x[0], x[1]) }},
		{"MulRow", []*Tensor{p(5, 4), p(4)}, func(g *Graph, x []*Tensor) *Tensor { return g.MulRow(x[0], x[1]) }},
		{"MulCol", []*Tensor{p(5, 4), p(5)}, func(g *Graph, x []*Tensor) *Tensor { return g.MulCol(x[0], x[1]) }},
		{"Sum", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Sum(x[0]) }},
		{"Mean", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Mean(x[0]) }},
		{"SumRows", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.SumRows(x[0]) }},
		{"SumCols", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.SumCols(x[0]) }},
		{"RowNorm", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.RowNorm(x[0]) }},
		{"ColNorm", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.ColNorm(x[0]) }},
		{"Exp", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Exp(x[0]) }},
		{"Log", []*Tensor{randPos(r, 3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Log(x[0]) }},
		{"Sqrt", []*Tensor{randPos(r, 3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Sqrt(x[0]) }},
		{"ReLU", []*Tensor{awayFromZero(p(3, 4))}, func(g *Graph, x []*Tensor) *Tensor { return g.ReLU(x[0]) }},
		{"Tanh", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Tanh(x[0]) }},
		{"GELU", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.GELU(x[0]) }},
		{"Softmax", []*Tensor{p(3, 5)}, func(g *Graph, x []*Tensor) *Tensor { return g.Softmax(x[0]) }},
		{"LogSoftmax", []*Tensor{p(3, 5)}, func(g *Graph, x []*Tensor) *Tensor { return g.LogSoftmax(x[0]) }},
		{"CrossEntropy", []*Tensor{p(4, 5)}, func(g *Graph, x []*Tensor) *Tensor {
			return g.CrossEntropy(x[0], []int{1, -1, 4, 0})
		}},
		{"SoftCrossEntropy", []*Tensor{p(4, 5)}, func(g *Graph, x []*Tensor) *Tensor {
			q := New(4, 5)
			NewRNG(3, "target").FillUniform(q, 0, 1)
			for i := range 4 {
				s := float32(sum(q.Data[i*5 : i*5+5]))
				for j := range 5 {
					q.Data[i*5+j] /= s
				}
			}
			return g.SoftCrossEntropy(x[0], q)
		}},
		{"LayerNorm", []*Tensor{p(3, 6), p(6), p(6)}, func(g *Graph, x []*Tensor) *Tensor { return g.LayerNorm(x[0], x[1], x[2]) }},
		{"LayerNorm/nobias", []*Tensor{p(3, 6), p(6)}, func(g *Graph, x []*Tensor) *Tensor { return g.LayerNorm(x[0], x[1], nil) }},
		{"RMSNorm", []*Tensor{p(3, 6), p(6)}, func(g *Graph, x []*Tensor) *Tensor { return g.RMSNorm(x[0], x[1]) }},
		{"Embedding", []*Tensor{p(5, 3)}, func(g *Graph, x []*Tensor) *Tensor { return g.Embedding(x[0], []int{4, 0, 4, 2}) }},
		{"Reshape", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor {
			return g.Mul(g.Reshape(x[0], 2, 6), g.Reshape(x[0], 2, 6))
		}},
		{"Transpose", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Transpose(x[0]) }},
		{"SliceRows", []*Tensor{p(5, 3)}, func(g *Graph, x []*Tensor) *Tensor { return g.Exp(g.SliceRows(x[0], 1, 4)) }},
		{"SliceCols", []*Tensor{p(3, 5)}, func(g *Graph, x []*Tensor) *Tensor { return g.SliceCols(x[0], 1, 4) }},
		{"ConcatRows", []*Tensor{p(2, 3), p(4, 3)}, func(g *Graph, x []*Tensor) *Tensor { return g.ConcatRows(x[0], x[1]) }},
		{"ConcatCols", []*Tensor{p(3, 2), p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.ConcatCols(x[0], x[1]) }},
		{"Linear", []*Tensor{p(5, 4), p(3, 4), p(3)}, func(g *Graph, x []*Tensor) *Tensor { return g.Linear(x[0], x[1], x[2]) }},
		{"Linear/nobias", []*Tensor{p(5, 4), p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.Linear(x[0], x[1], nil) }},
		{"LowRankLinear", []*Tensor{p(5, 4), p(3, 4), p(3), p(5, 4), p(2, 4), p(3, 2)}, func(g *Graph, x []*Tensor) *Tensor {
			return g.LowRankLinear(x[0], x[1], x[2], x[3], x[4], x[5], 1.5)
		}},
		{"LowRankLinear/shared-input", []*Tensor{p(5, 4), p(3, 4), p(2, 4), p(3, 2)}, func(g *Graph, x []*Tensor) *Tensor {
			return g.LowRankLinear(x[0], x[1], nil, x[0], x[2], x[3], -0.5)
		}},
		{"Dropout", []*Tensor{p(4, 6)}, func(g *Graph, x []*Tensor) *Tensor { return g.Dropout(x[0], 0.3, NewRNG(5, "dropout")) }},
		{"CausalSelfAttention", []*Tensor{p(2*5, 6), p(2*5, 6), p(2*5, 6)}, func(g *Graph, x []*Tensor) *Tensor {
			return g.CausalSelfAttention(x[0], x[1], x[2], 2, 5, 2)
		}},
	}
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			a, b := p(3, 4), p(4, 5)
			if ta {
				a = p(4, 3)
			}
			if tb {
				b = p(5, 4)
			}
			cases = append(cases, tc{fmt.Sprintf("MatMul/tA=%v,tB=%v", ta, tb), []*Tensor{a, b},
				func(g *Graph, x []*Tensor) *Tensor { return g.MatMul(x[0], x[1], ta, tb) }})
			ba, bb := p(2, 3, 4), p(2, 4, 5)
			if ta {
				ba = p(2, 4, 3)
			}
			if tb {
				bb = p(2, 5, 4)
			}
			cases = append(cases, tc{fmt.Sprintf("MatMulAdd/tA=%v,tB=%v", ta, tb), []*Tensor{p(3, 5), a, b},
				func(g *Graph, x []*Tensor) *Tensor { return g.MatMulAdd(x[0], x[1], x[2], ta, tb, -0.7) }})
			cases = append(cases, tc{fmt.Sprintf("BatchMatMul/tA=%v,tB=%v", ta, tb), []*Tensor{ba, bb},
				func(g *Graph, x []*Tensor) *Tensor { return g.BatchMatMul(x[0], x[1], ta, tb) }})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { gradCheck(t, c.name, c.in, c.f) })
	}
}

func TestDetachBlocksGradient(t *testing.T) {
	x := randParam(NewRNG(1, "t"), 2, 3)
	g := NewGraph()
	y := g.Sum(g.Mul(x, g.Detach(x)))
	g.Backward(y)
	for i, v := range x.Grad {
		if want := x.Data[i]; v != want {
			t.Fatalf("grad[%d] = %v, want %v (only the non-detached factor)", i, v, want)
		}
	}
}
