package methods

import (
	"math"
	"testing"

	"peftbench/nn"
)

func init() {
	addTorchCase(torchSpec{name: "loldu", method: "loldu", opts: map[string]any{"rank": 4}, lr: 5e-2, clip: 0.02})
	addTorchCase(torchSpec{name: "loldu-fixed-scale", method: "loldu", opts: map[string]any{"rank": 6, "alpha": 3, "train_scale": false},
		lr: 5e-2, clip: 0.02})
}

// TestLoLDULUGolden: luPivot on a hand-factored 2×3 matrix and its
// transpose: partial pivoting swaps the rows, W = P·L·U.
func TestLoLDULUGolden(t *testing.T) {
	// [[1 2 0] [3 4 1]]: pivot 3 (row 1): L = [[1 0] [1/3 1]],
	// U = [[3 4 1] [0 2/3 −1/3]].
	perm, lo, up := luPivot([]float32{1, 2, 0, 3, 4, 1}, 2, 3)
	want := struct {
		perm   []int
		lo, up []float64
	}{[]int{1, 0}, []float64{1, 0, 1.0 / 3, 1}, []float64{3, 4, 1, 0, 2.0 / 3, -1.0 / 3}}
	near := func(a, b []float64) bool {
		for i := range a {
			if math.Abs(a[i]-b[i]) > 1e-12 {
				return false
			}
		}
		return true
	}
	if perm[0] != want.perm[0] || !near(lo, want.lo) || !near(up, want.up) {
		t.Errorf("luPivot 2×3: perm %v L %v U %v, want %v %v %v", perm, lo, up, want.perm, want.lo, want.up)
	}
	// its transpose, 3×2 [[1 3] [2 4] [0 1]]: pivot 2 (row 1) then, in
	// the Schur complement [3−2, 1−0] = [1, 1] of rows 0 and 2, row 0.
	perm, lo, up = luPivot([]float32{1, 3, 2, 4, 0, 1}, 3, 2)
	if !near(lo, []float64{1, 0, 0.5, 1, 0, 1}) || !near(up, []float64{2, 4, 0, 1}) || perm[0] != 1 || perm[1] != 0 || perm[2] != 2 {
		t.Errorf("luPivot 3×2: perm %v L %v U %v", perm, lo, up)
	}
}

// TestLoLDUFactors: at r = min(out, in) the frozen factors rebuild W0,
// P·L_r·diag(D_r)·U_r = W0 (float64 here), with |L| ≤ 1 (partial pivoting)
// and z = D_r; after training, ΔW = P·L_r·diag(σ·z − σ₀·D_r)·U_r with σ
// trained (train_scale) or fixed at α/r.
func TestLoLDUFactors(t *testing.T) {
	for _, shape := range [][2]int{{12, 20}, {20, 12}} {
		out, in := shape[0], shape[1]
		l := nn.NewLinear("fc", in, out, true, nn.NewRNG(1, "init"))
		k := min(out, in)
		if _, err := Attach("loldu", []*nn.Linear{l}, map[string]any{"rank": k}, nn.NewRNG(1, "method")); err != nil {
			t.Fatal(err)
		}
		a := l.Adapter.(*LoLDU)
		var worst float64
		for i := range out {
			for j := range in {
				var w float64
				for p := range k {
					w += float64(a.PL.Data[i*k+p]) * float64(a.Z.Data[p]) * float64(a.U.Data[p*in+j])
				}
				worst = max(worst, math.Abs(w-float64(l.Weight.Data[i*in+j])))
			}
		}
		if worst > 1e-5 {
			t.Errorf("%d×%d: P·L·D·U off W0 by %.3g", out, in, worst)
		}
		if m := maxAbs(a.PL.Data); m > 1+1e-6 {
			t.Errorf("%d×%d: max |L| = %.4g > 1: not partially pivoted", out, in, m)
		}
		for p := range k { // U_r unit upper: U[p][p] = 1
			if u := a.U.Data[p*in+p]; math.Abs(float64(u)-1) > 1e-6 {
				t.Errorf("%d×%d: U[%d][%d] = %g, want 1", out, in, p, p, u)
			}
		}
	}
	for _, trainScale := range []bool{true, false} {
		m := refModels(1)[0]
		const r = 4
		att := attachRef(t, m, "loldu", map[string]any{"rank": r, "alpha": 2, "train_scale": trainScale})
		if n := len(att.Params()); n != 2*(2-map[bool]int{true: 0, false: 1}[trainScale]) {
			t.Errorf("train_scale=%v: %d trainable tensors", trainScale, n)
		}
		train(t, m, att, 4, 2e-2)
		for _, l := range m.targets {
			a := l.Adapter.(*LoLDU)
			sigma, sigma0 := float64(a.Sigma.Data[0]), 2.0/r
			if moved := math.Abs(sigma - sigma0); trainScale != (moved > 1e-4) {
				t.Errorf("%s train_scale=%v: σ %.6g from σ₀ %.6g", l.Name, trainScale, sigma, sigma0)
			}
			perm, lo, up := luPivot(l.Weight.Data, l.Out, l.In)
			k := min(l.Out, l.In)
			coef := make([]float64, r)
			for p := range r {
				d := up[p*l.In+p]
				coef[p] = sigma*float64(a.Z.Data[p]) - sigma0*d
			}
			got := deltaOf(l)
			var worst, scale float64
			for i := range l.Out {
				for j := range l.In {
					var w float64
					for p := range r {
						w += lo[i*k+p] * coef[p] * up[p*l.In+j] / up[p*l.In+p]
					}
					// (P·L)[perm[i]] = L[i]
					worst = max(worst, math.Abs(float64(got[perm[i]*l.In+j])-w))
					scale = max(scale, math.Abs(w))
				}
			}
			if scale == 0 || worst > 1e-4*scale {
				t.Errorf("%s train_scale=%v: ΔW off P·L_r·diag(σz − σ₀D_r)·U_r by %.3g (max %.3g)", l.Name, trainScale, worst, scale)
			}
		}
	}
}
