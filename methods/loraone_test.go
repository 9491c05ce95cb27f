package methods

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

func init() {
	// Everything LoRA-One starts from is derived (the gradient and its
	// SVD): nothing is exported.
	addTorchCase(torchSpec{name: "lora-one", method: "lora-one", opts: map[string]any{"rank": 4}, lr: 1e-2, clip: 0.05})
	addTorchCase(torchSpec{name: "lora-one-gd", method: "lora-one",
		opts: map[string]any{"rank": 4, "alpha": 8, "use_rslora": false, "scale": "gd", "residual": true}, lr: 1e-2, clip: 0.05})
}

// handMLP is a two-layer ReLU MLP (12 → 10 → 6) under mean cross-entropy
// whose gradients with respect to W1 and W2 the test computes by hand, in
// float64: the gradient-driven inits are checked against a gradient the
// package's autodiff did not produce. Batch b has its own inputs and
// labels.
type handMLP struct {
	l1, l2 *nn.Linear
	xs     [][]float32 // per batch, n×12
	labels [][]int
	n      int
}

func newHandMLP(batches int) *handMLP {
	rng := nn.NewRNG(5, "hand")
	h := &handMLP{l1: nn.NewLinear("fc1", 12, 10, true, rng), l2: nn.NewLinear("fc2", 10, 6, true, rng), n: 9}
	for range batches {
		x := nn.New(h.n, 12)
		rng.FillNormal(x, 0.3, 1)
		lab := make([]int, h.n)
		for i := range lab {
			lab[i] = rng.Intn(6)
		}
		h.xs, h.labels = append(h.xs, x.Data), append(h.labels, lab)
	}
	return h
}

func (h *handMLP) layers() []*nn.Linear { return []*nn.Linear{h.l1, h.l2} }

func (h *handMLP) loss(g *nn.Graph, b int) *nn.Tensor {
	x := nn.FromData(h.xs[b], h.n, 12)
	return g.CrossEntropy(h.l2.Forward(g, g.ReLU(h.l1.Forward(g, x))), h.labels[b])
}

// grads returns dL/dW1 and dL/dW2 (row-major, float64), averaged over the
// batches, with the adapters off: dy2 = (softmax(y2) − onehot)/n,
// G2 = dy2ᵀ·h, dy1 = (dy2·W2) ⊙ [y1 > 0], G1 = dy1ᵀ·x.
func (h *handMLP) grads() [2][]float64 {
	w := func(l *nn.Linear, i, j int) float64 { return float64(l.Weight.Data[i*l.In+j]) }
	var gs [2][]float64
	gs[0], gs[1] = make([]float64, 10*12), make([]float64, 6*10)
	nb := float64(len(h.xs))
	for b, xb := range h.xs {
		for r := range h.n {
			x := xb[r*12 : (r+1)*12]
			y1, hid := make([]float64, 10), make([]float64, 10)
			for i := range 10 {
				y1[i] = float64(h.l1.Bias.Data[i])
				for j := range 12 {
					y1[i] += w(h.l1, i, j) * float64(x[j])
				}
				hid[i] = max(y1[i], 0)
			}
			y2 := make([]float64, 6)
			top := math.Inf(-1)
			for i := range 6 {
				y2[i] = float64(h.l2.Bias.Data[i])
				for j := range 10 {
					y2[i] += w(h.l2, i, j) * hid[j]
				}
				top = max(top, y2[i])
			}
			var z float64
			for i := range 6 {
				y2[i] = math.Exp(y2[i] - top)
				z += y2[i]
			}
			dy2 := make([]float64, 6)
			for i := range 6 {
				dy2[i] = y2[i] / z
				if i == h.labels[b][r] {
					dy2[i]--
				}
				dy2[i] /= float64(h.n) * nb
			}
			for i := range 6 {
				for j := range 10 {
					gs[1][i*10+j] += dy2[i] * hid[j]
				}
			}
			for j := range 10 {
				if y1[j] <= 0 {
					continue
				}
				var d float64
				for i := range 6 {
					d += dy2[i] * w(h.l2, i, j)
				}
				for k := range 12 {
					gs[0][j*12+k] += d * float64(x[k])
				}
			}
		}
	}
	return gs
}

// truncSVD returns the rank-r truncation of the rows×cols matrix m
// (r triplets from the top, or from the bottom), and its top singular
// value.
func truncSVD(m []float64, rows, cols, r int, bottom bool) ([]float64, float64) {
	var f mat.SVD
	if !f.Factorize(mat.NewDense(rows, cols, append([]float64(nil), m...)), mat.SVDThin) {
		panic("svd")
	}
	var u, v mat.Dense
	f.UTo(&u)
	f.VTo(&v)
	s := f.Values(nil)
	first := 0
	if bottom {
		first = len(s) - r
	}
	out := make([]float64, rows*cols)
	for p := first; p < first+r; p++ {
		for i := range rows {
			for j := range cols {
				out[i*cols+j] += u.At(i, p) * s[p] * v.At(j, p)
			}
		}
	}
	return out, s[0]
}

// product returns the float64 product of row-major a (n×k) and b (k×m).
func product(a, b []float32, n, k, m int) []float64 {
	out := make([]float64, n*m)
	for i := range n {
		for p := range k {
			av := float64(a[i*k+p])
			for j := range m {
				out[i*m+j] += av * float64(b[p*m+j])
			}
		}
	}
	return out
}

// relGap is max|a−b| / max|b|.
func relGap(a, b []float64) float64 {
	var d, m float64
	for i := range a {
		d = max(d, math.Abs(a[i]-b[i]))
		m = max(m, math.Abs(b[i]))
	}
	return d / m
}

// TestLoRAOneSpectralInit: the initial B·A is the rank-r truncation of
// −G, G the hand-computed gradient averaged over the batches, divided by
// s₁γ ("stable") or s₁ ("unit"); its factors are U_r√S_r and √S_rV_rᵀ over
// √(s₁γ) (B's columns orthogonal, with norms √(σ_p/(s₁γ))), s = α/√r or α/r,
// and the step-0 model is W0 + s·B·A (W0 not reset) unless residual.
func TestLoRAOneSpectralInit(t *testing.T) {
	for _, c := range []struct {
		opts     map[string]any
		divisor  func(s float64) float64 // γ-like factor beyond s₁
		scale    float64
		residual bool
	}{
		{map[string]any{"rank": 3, "grad_batches": 3}, func(float64) float64 { return 128 }, 16 / math.Sqrt(3), false},
		{map[string]any{"rank": 2, "grad_batches": 2, "scale": "unit", "use_rslora": false, "alpha": 4}, func(float64) float64 { return 1 }, 2, false},
		{map[string]any{"rank": 2, "grad_batches": 1, "scale": "gd", "residual": true}, func(s float64) float64 { return s * s }, 16 / math.Sqrt(2), true},
	} {
		h := newHandMLP(c.opts["grad_batches"].(int))
		att, err := Attach("lora-one", h.layers(), c.opts, nn.NewRNG(1, "method"))
		if err != nil {
			t.Fatal(err)
		}
		if err := att.(BeforeTrainer).BeforeTraining(EstimateGrads(h.loss)); err != nil {
			t.Fatal(err)
		}
		gs := h.grads()
		r := c.opts["rank"].(int)
		for k, l := range h.layers() {
			a := loraOf(t, l)
			if math.Abs(float64(a.Scale)-c.scale) > 1e-6*c.scale {
				t.Errorf("%v %s: s = %g, want %g", c.opts, l.Name, a.Scale, c.scale)
			}
			neg := make([]float64, len(gs[k]))
			for i, g := range gs[k] {
				neg[i] = -g
			}
			want, s1 := truncSVD(neg, l.Out, l.In, r, false)
			div := s1 * c.divisor(c.scale)
			for i := range want {
				want[i] /= div
			}
			if d := relGap(product(a.B.Data, a.A.Data, l.Out, r, l.In), want); d > 1e-4 {
				t.Errorf("%v %s: B·A off (−G)_r/(s₁γ) by %.3g relative", c.opts, l.Name, d)
			}
			// B = U_r·√S_r/√(s₁γ): orthogonal columns.
			btb := product(transpose(a.B.Data, l.Out, r), a.B.Data, r, l.Out, r)
			for p := range r {
				for q := range r {
					if p != q && math.Abs(btb[p*r+q]) > 1e-5*btb[0] {
						t.Errorf("%v %s: B's columns %d, %d not orthogonal (%.3g)", c.opts, l.Name, p, q, btb[p*r+q])
					}
				}
			}
			delta := deltaOf(l)
			sba := product(a.B.Data, a.A.Data, l.Out, r, l.In)
			for i := range sba {
				if c.residual {
					sba[i] = 0
				} else {
					sba[i] *= float64(a.Scale)
				}
			}
			var worst float64
			for i, v := range delta {
				worst = max(worst, math.Abs(float64(v)-sba[i]))
			}
			if worst > 1e-6 {
				t.Errorf("%v %s: step-0 ΔW off s·B·A (residual %v) by %.3g", c.opts, l.Name, c.residual, worst)
			}
		}
	}
}

func transpose(a []float32, rows, cols int) []float32 {
	t := make([]float32, len(a))
	for i := range rows {
		for j := range cols {
			t[j*rows+i] = a[i*cols+j]
		}
	}
	return t
}
