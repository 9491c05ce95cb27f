package methods

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

func init() {
	// A and B derive from W0 and the inputs' covariance: nothing random
	// to export.
	addTorchCase(torchSpec{name: "corda", method: "corda", opts: map[string]any{"rank": 4, "alpha": 8}, lr: 1e-2, clip: 0.05})
	addTorchCase(torchSpec{name: "corda-kpm", method: "corda",
		opts: map[string]any{"rank": 4, "alpha": 8, "corda_method": "kpm", "calib_batches": 2}, lr: 1e-2, clip: 0.05})
}

// TestCorDADecomposition: with C the covariance HF PEFT builds (each
// batch divided by |max|, averaged over the batches, damped by
// 0.01·mean(diag C)·I, doubled until the inverse is accurate), computed
// here, s·B0·A0·C is the rank-r truncation of W0·C, from the top (IPM) or
// the bottom (KPM) of its spectrum, B0's columns are orthogonal, the
// trainable factors start at B0, A0, and the step-0 model is the base.
func TestCorDADecomposition(t *testing.T) {
	for _, c := range []struct {
		opts   map[string]any
		bottom bool
	}{
		{map[string]any{"rank": 3, "calib_batches": 3}, false},
		{map[string]any{"rank": 2, "alpha": 16, "calib_batches": 2, "corda_method": "kpm"}, true},
	} {
		rng := nn.NewRNG(4, "corda")
		l := nn.NewLinear("fc", 14, 9, true, rng)
		const n = 11
		batch := func(b int) []float32 {
			x := nn.New(n, 14)
			nn.NewRNG(uint64(b), "corda-batch").FillNormal(x, 0.5, float32(1+b))
			for j := range 14 { // anisotropic inputs: C far from a multiple of I
				for i := range n {
					x.Data[i*14+j] *= float32(1 + j%5)
				}
			}
			return x.Data
		}
		att, err := Attach("corda", []*nn.Linear{l}, c.opts, nn.NewRNG(1, "method"))
		if err != nil {
			t.Fatal(err)
		}
		fwd := func(g *nn.Graph, b int) { l.Forward(g, nn.FromData(batch(b), n, 14)) }
		if err := att.(InputCalibrator).CalibrateInputs(EstimateInputs(fwd)); err != nil {
			t.Fatal(err)
		}
		nb, r := c.opts["calib_batches"].(int), c.opts["rank"].(int)
		// C, damped, here.
		cov := make([]float64, 14*14)
		for b := range nb {
			x := batch(b)
			top := math.Inf(-1)
			for _, v := range x {
				top = max(top, float64(v))
			}
			for i := range n {
				for p := range 14 {
					for q := range 14 {
						cov[p*14+q] += float64(x[i*14+p]) * float64(x[i*14+q]) / (top * top * float64(nb))
					}
				}
			}
		}
		var md float64
		for j := range 14 {
			md += cov[j*14+j] / 14
		}
		cf := mat.NewDense(14, 14, nil)
		for damp := 0.01; ; damp *= 2 {
			cf = mat.NewDense(14, 14, append([]float64(nil), cov...))
			for j := range 14 {
				cf.Set(j, j, cf.At(j, j)+damp*md)
			}
			var inv, id mat.Dense
			if err := inv.Inverse(cf); err != nil {
				continue
			}
			id.Mul(cf, &inv)
			for j := range 14 {
				id.Set(j, j, id.At(j, j)-1)
			}
			if mat.Norm(&id, 2) < 0.05 {
				break
			}
		}
		var wc mat.Dense
		wc.Mul(dense(l.Weight.Data, 9, 14), cf)
		want, _ := truncSVD(wc.RawMatrix().Data, 9, 14, r, c.bottom)

		a := loraOf(t, l)
		s := float64(a.Scale)
		ba := product(a.B0.Data, a.A0.Data, 9, r, 14)
		got := mat.NewDense(9, 14, nil)
		got.Mul(mat.NewDense(9, 14, ba), cf)
		got.Scale(s, got)
		if d := relGap(got.RawMatrix().Data, want); d > 1e-4 {
			t.Errorf("%v: s·B0·A0·C off the rank-%d truncation of W0·C (bottom %v) by %.3g relative", c.opts, r, c.bottom, d)
		}
		btb := product(transpose(a.B0.Data, 9, r), a.B0.Data, r, 9, r)
		for p := range r {
			for q := range r {
				if p != q && math.Abs(btb[p*r+q]) > 1e-5*math.Sqrt(btb[p*r+p]*btb[q*r+q]) {
					t.Errorf("%v: B0's columns %d, %d not orthogonal", c.opts, p, q)
				}
			}
		}
		if relDiff(a.A.Data, a.A0.Data) != 0 || relDiff(a.B.Data, a.B0.Data) != 0 || a.A0.RequiresGrad() || a.B0.RequiresGrad() {
			t.Errorf("%v: trainable A, B must start at the frozen A0, B0", c.opts)
		}
		if d := maxAbs(deltaOf(l)); d > 1e-6 {
			t.Errorf("%v: step-0 ΔW = %.3g, want 0", c.opts, d)
		}
	}
}
