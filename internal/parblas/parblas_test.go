package parblas

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

func randSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.NormFloat64()
	}
	return s
}

// near reports whether got matches want to 1e-12 of want's largest entry.
func near(got, want []float64) bool {
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12*max(scale, 1) {
			return false
		}
	}
	return true
}

// TestDsymv checks the parallel product against gonum's serial one across
// the threshold, with strided vectors (as Dlatrd passes them), and that
// the other cases are gonum's, bit for bit.
func TestDsymv(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		n, lda, incX, incY int
		ul                 blas.Uplo
		alpha, beta        float64
		exact              bool // delegated to gonum: bit-identical
	}{
		{100, 100, 1, 1, blas.Lower, 1, 0, true},
		{511, 511, 1, 1, blas.Lower, 1, 0, true},
		{512, 512, 1, 1, blas.Lower, 1, 0, false},
		{700, 730, 1, 1, blas.Lower, -0.5, 1, false},
		{700, 730, 730, 3, blas.Lower, 1, 0.25, false},
		{1024, 1024, 1024, 1024, blas.Lower, 1, 0, false},
		{700, 700, 1, 1, blas.Upper, 1, 0.5, true},
		{700, 700, -1, 1, blas.Lower, 1, 0.5, true},
	} {
		a := randSlice(rng, tc.lda*tc.n)
		x := randSlice(rng, (tc.n-1)*abs(tc.incX)+1)
		y0 := randSlice(rng, (tc.n-1)*tc.incY+1)
		want, got := slices.Clone(y0), slices.Clone(y0)
		gonum.Implementation{}.Dsymv(tc.ul, tc.n, tc.alpha, a, tc.lda, x, tc.incX, tc.beta, want, tc.incY)
		Implementation{}.Dsymv(tc.ul, tc.n, tc.alpha, a, tc.lda, x, tc.incX, tc.beta, got, tc.incY)
		if tc.exact && !slices.Equal(got, want) || !near(got, want) {
			t.Errorf("Dsymv n=%d lda=%d inc=%d,%d %c α=%g β=%g differs from gonum's", tc.n, tc.lda, tc.incX, tc.incY, tc.ul, tc.alpha, tc.beta)
		}
		// y entries between the strided ones are untouched.
		for i := range got {
			if i%tc.incY != 0 && got[i] != y0[i] {
				t.Errorf("Dsymv n=%d incY=%d wrote y[%d] between strides", tc.n, tc.incY, i)
				break
			}
		}
	}
}

func abs(x int) int { return max(x, -x) }

// TestDsyr2k checks the parallel trailing update against gonum's on the
// lower triangle, and that the upper triangle is left alone.
func TestDsyr2k(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		n, k, ld    int
		ul          blas.Uplo
		tA          blas.Transpose
		alpha, beta float64
		exact       bool
	}{
		{300, 32, 300, blas.Lower, blas.NoTrans, -1, 1, true},
		{512, 32, 512, blas.Lower, blas.NoTrans, -1, 1, false},
		{900, 17, 930, blas.Lower, blas.NoTrans, 0.5, 1, false},
		{900, 17, 930, blas.Lower, blas.NoTrans, 0.5, 0, true},
		{600, 8, 600, blas.Upper, blas.NoTrans, -1, 1, true},
	} {
		a := randSlice(rng, tc.n*tc.k)
		b := randSlice(rng, tc.n*tc.k)
		c0 := randSlice(rng, tc.n*tc.ld)
		want, got := slices.Clone(c0), slices.Clone(c0)
		gonum.Implementation{}.Dsyr2k(tc.ul, tc.tA, tc.n, tc.k, tc.alpha, a, tc.k, b, tc.k, tc.beta, want, tc.ld)
		Implementation{}.Dsyr2k(tc.ul, tc.tA, tc.n, tc.k, tc.alpha, a, tc.k, b, tc.k, tc.beta, got, tc.ld)
		if tc.exact && !slices.Equal(got, want) || !near(got, want) {
			t.Errorf("Dsyr2k n=%d k=%d %c β=%g differs from gonum's", tc.n, tc.k, tc.ul, tc.beta)
		}
		if tc.ul == blas.Lower {
			for i := range tc.n {
				if !slices.Equal(got[i*tc.ld+i+1:(i+1)*tc.ld], c0[i*tc.ld+i+1:(i+1)*tc.ld]) {
					t.Errorf("Dsyr2k n=%d wrote above the diagonal in row %d", tc.n, i)
					break
				}
			}
		}
	}
}

// TestDeterministic checks the split does not depend on GOMAXPROCS.
func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 800
	a, x := randSlice(rng, n*n), randSlice(rng, n)
	run := func(procs int) []float64 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		y := make([]float64, n)
		Implementation{}.Dsymv(blas.Lower, n, 1, a, n, x, 1, 0, y, 1)
		return y
	}
	if !slices.Equal(run(1), run(4)) {
		t.Error("Dsymv differs between GOMAXPROCS 1 and 4")
	}
}
