package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// TestDgemm compares Dgemm with a plain float64 loop over every transpose,
// sizes around the tile and block edges, strides wider than the matrices,
// and alpha/beta cases, checking that C's padding is untouched.
func TestDgemm(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct{ m, n, k int }{
		{1, 1, 1}, {5, 7, 3}, {6, 8, 16}, {7, 9, 300}, {97, 20, 1024}, {20, 97, 513},
		{200, 257, 64}, {300, 40, 700},
	} {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, ab := range [][2]float64{{1, 0}, {-0.5, 1}, {2, 0.25}} {
				name := fmt.Sprintf("%dx%dx%d/tA=%v,tB=%v/α=%g,β=%g", tc.m, tc.n, tc.k, tr[0], tr[1], ab[0], ab[1])
				transA, transB := tr[0], tr[1]
				ar, ac := tc.m, tc.k
				if transA {
					ar, ac = tc.k, tc.m
				}
				br, bc := tc.k, tc.n
				if transB {
					br, bc = tc.n, tc.k
				}
				lda, ldb, ldc := ac+3, bc+1, tc.n+5
				a, b := randF64(r, ar*lda), randF64(r, br*ldb)
				c0 := randF64(r, tc.m*ldc)
				want, bound := gemm64(transA, transB, tc.m, tc.n, tc.k, ab[0], a, lda, b, ldb, ab[1], c0, ldc)
				got := slices.Clone(c0)
				Dgemm(transA, transB, tc.m, tc.n, tc.k, ab[0], a, lda, b, ldb, ab[1], got, ldc)
				for i := range tc.m {
					for j := range ldc {
						g := got[i*ldc+j]
						if j >= tc.n {
							if g != c0[i*ldc+j] {
								t.Fatalf("%s: wrote C padding at (%d, %d)", name, i, j)
							}
							continue
						}
						// float64 rounding: a few ulps of the bound per term.
						if w := want[i*tc.n+j]; math.Abs(g-w) > 4e-16*float64(tc.k+2)*bound[i*tc.n+j] {
							t.Fatalf("%s: C[%d,%d] = %v, want %v", name, i, j, g, w)
						}
					}
				}
			}
		}
	}
}

// TestDgemmDeterministic checks the result does not depend on GOMAXPROCS.
func TestDgemmDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const m, n, k = 300, 600, 700
	a, b := randF64(r, m*k), randF64(r, k*n)
	run := func(procs int) []float64 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		c := make([]float64, m*n)
		Dgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
		return c
	}
	if !slices.Equal(run(1), run(3)) {
		t.Error("Dgemm differs between GOMAXPROCS 1 and 3")
	}
}

func randF64(r *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = r.NormFloat64()
	}
	return s
}

func BenchmarkDgemm1024(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	const n = 1024
	x, y, c := randF64(r, n*n), randF64(r, n*n), make([]float64, n*n)
	for b.Loop() {
		Dgemm(false, false, n, n, n, 1, x, n, y, n, 0, c, n)
	}
	b.ReportMetric(2*n*n*n/b.Elapsed().Seconds()*float64(b.N)/1e9, "GFLOP/s")
}
