package methods

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		a := l.Adapter.(*LoRA)
		if a.A0 != nil { // pissa: the Python side takes W0's SVD itself
			return map[string][]float32{}
		}
		return map[string][]float32{"lora_A": slices.Clone(a.A.Data)}
	}
	addTorchCase(torchSpec{name: "riemannian", method: "riemannian", opts: map[string]any{"rank": 4, "alpha": 8},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "riemannian-pissa", method: "riemannian", opts: map[string]any{"rank": 4, "alpha": 8, "init": "pissa", "reg": 1e-3},
		lr: 1e-2, clip: 0.05, export: export})
}

// TestRiemannianPreconditioner: BeforeStep replaces g_A by the solution of
// (BᵀB + λI)·g_A' = g_A and g_B by that of g_B'·(AAᵀ + λI) = g_B, from
// the factors before the step and whatever the scale s.
func TestRiemannianPreconditioner(t *testing.T) {
	for _, c := range []struct {
		alpha, reg float64
	}{{8, 1e-2}, {32, 1e-3}} {
		const out, in, r = 12, 10, 3
		l := nn.NewLinear("fc", in, out, true, nn.NewRNG(1, "init"))
		att, err := Attach("riemannian", []*nn.Linear{l}, map[string]any{"rank": r, "alpha": c.alpha, "reg": c.reg}, nn.NewRNG(1, "method"))
		if err != nil {
			t.Fatal(err)
		}
		a := l.Adapter.(*LoRA)
		rng := nn.NewRNG(2, "test")
		rng.FillNormal(a.B, 0, 0.3)
		gA, gB := nn.New(r, in), nn.New(out, r)
		rng.FillNormal(gA, 0, 1)
		rng.FillNormal(gB, 0, 1)
		copy(a.A.Grad, gA.Data)
		copy(a.B.Grad, gB.Data)
		att.(BeforeStepper).BeforeStep(0, 1)
		A, B := dense(a.A.Data, r, in), dense(a.B.Data, out, r)
		var btb, aat, back mat.Dense
		btb.Mul(B.T(), B)
		aat.Mul(A, A.T())
		for i := range r {
			btb.Set(i, i, btb.At(i, i)+c.reg)
			aat.Set(i, i, aat.At(i, i)+c.reg)
		}
		back.Mul(&btb, dense(a.A.Grad, r, in))
		if d := matDiff(&back, dense(gA.Data, r, in)); d > 1e-5 {
			t.Errorf("α=%g: (BᵀB+λI)·g_A' differs from g_A by %.3g", c.alpha, d)
		}
		back.Reset()
		back.Mul(dense(a.B.Grad, out, r), &aat)
		if d := matDiff(&back, dense(gB.Data, out, r)); d > 1e-5 {
			t.Errorf("α=%g: g_B'·(AAᵀ+λI) differs from g_B by %.3g", c.alpha, d)
		}
	}
}

// matDiff is max |a − b| / max(1, max |b|).
func matDiff(a, b mat.Matrix) float64 {
	r, c := b.Dims()
	var d, m float64
	for i := range r {
		for j := range c {
			d = max(d, math.Abs(a.At(i, j)-b.At(i, j)))
			m = max(m, math.Abs(b.At(i, j)))
		}
	}
	return d / max(1, m)
}
