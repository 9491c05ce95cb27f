package analysis

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func randDense(rng *rand.Rand, r, c int) *mat.Dense {
	d := make([]float64, r*c)
	for i := range d {
		d[i] = rng.NormFloat64()
	}
	return mat.NewDense(r, c, d)
}

// randOrthonormal returns an r×c matrix with orthonormal columns (c ≤ r).
func randOrthonormal(rng *rand.Rand, r, c int) *mat.Dense {
	var qr mat.QR
	qr.Factorize(randDense(rng, r, c))
	var q mat.Dense
	qr.QTo(&q)
	return mat.DenseCopyOf(q.Slice(0, r, 0, c))
}

// TestLeftSingular checks the Gram/inverse-iteration path against the
// definition: orthonormal columns, ‖Wᵀuᵢ‖ = σᵢ, σ equal to gonum's Dgesvd.
func TestLeftSingular(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	repeated := func(r, c int) *mat.Dense { // repeated singular values: a cluster
		u, v := randOrthonormal(rng, r, min(r, c)), randOrthonormal(rng, c, min(r, c))
		s := make([]float64, min(r, c))
		for i := range s {
			s[i] = float64(3 - i%3)
		}
		var w mat.Dense
		w.Mul(u, mat.NewDiagDense(len(s), s))
		w.Mul(&w, v.T())
		return &w
	}
	diag := mat.NewDense(5, 5, nil)
	for i := range 5 {
		diag.Set(i, i, float64(i+1))
	}
	graded := func(r, c int) *mat.Dense { // σ from 1 down to 1e-12
		n := min(r, c)
		u, v := randOrthonormal(rng, r, n), randOrthonormal(rng, c, n)
		s := make([]float64, n)
		for i := range s {
			s[i] = math.Pow(1e-12, float64(i)/float64(n-1))
		}
		var us, w mat.Dense
		us.Mul(u, mat.NewDiagDense(n, s))
		w.Mul(&us, v.T())
		return &w
	}
	for _, tc := range []struct {
		name string
		w    *mat.Dense
		nvec int
	}{
		{"graded", graded(60, 60), 60},
		{"graded-tall", graded(70, 40), 40},
		{"square", randDense(rng, 60, 60), 60},
		{"wide", randDense(rng, 40, 70), 40},
		{"tall", randDense(rng, 70, 30), 30},
		{"top-k", randDense(rng, 80, 80), 10},
		{"clusters", repeated(48, 48), 48},
		{"diagonal", diag, 5},
		{"rank-deficient", func() *mat.Dense {
			var w mat.Dense
			w.Mul(randDense(rng, 50, 5), randDense(rng, 5, 50))
			return &w
		}(), 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, u, err := leftSingular(context.Background(), tc.w, tc.nvec)
			if err != nil {
				t.Fatal(err)
			}
			var svd mat.SVD
			svd.Factorize(tc.w, mat.SVDNone)
			want := svd.Values(nil)
			for i := range sig {
				if math.Abs(sig[i]-want[i]) > 1e-9*want[0] {
					t.Errorf("σ[%d] = %v, want %v", i, sig[i], want[i])
				}
			}
			var utu mat.Dense
			utu.Mul(u.T(), u)
			if !mat.EqualApprox(&utu, eye(tc.nvec), 1e-8) {
				t.Errorf("UᵀU ≠ I")
			}
			var wtu mat.Dense
			wtu.Mul(tc.w.T(), u)
			for j := range tc.nvec {
				got := mat.Norm(wtu.ColView(j), 2)
				if math.Abs(got-sig[j]) > 1e-8*want[0] || (sig[j] > 1e-10*want[0] && math.Abs(got-sig[j]) > 1e-5*sig[j]) {
					t.Errorf("‖Wᵀu[%d]‖ = %v, want σ = %v", j, got, sig[j])
				}
			}
		})
	}
}

func eye(n int) *mat.Dense {
	m := mat.NewDense(n, n, nil)
	for i := range n {
		m.Set(i, i, 1)
	}
	return m
}

var _ = fmt.Sprint
