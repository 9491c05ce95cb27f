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

// TestDsyrk checks the Gram product against gonum's on the ul triangle
// (the other one untouched), both transposes, with and without beta.
func TestDsyrk(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		n, k, ldc   int
		ul          blas.Uplo
		tr          blas.Transpose
		alpha, beta float64
		exact       bool
	}{
		{100, 50, 100, blas.Lower, blas.NoTrans, 1, 0, true},
		{600, 784, 610, blas.Lower, blas.NoTrans, 1, 0, false},
		{600, 300, 600, blas.Upper, blas.NoTrans, 0.5, 2, false},
		{520, 400, 520, blas.Lower, blas.Trans, -1, 1, false},
	} {
		lda := tc.k
		rows := tc.n
		if tc.tr != blas.NoTrans {
			lda, rows = tc.n, tc.k
		}
		a := randSlice(rng, rows*lda)
		c0 := randSlice(rng, tc.n*tc.ldc)
		want, got := slices.Clone(c0), slices.Clone(c0)
		gonum.Implementation{}.Dsyrk(tc.ul, tc.tr, tc.n, tc.k, tc.alpha, a, lda, tc.beta, want, tc.ldc)
		Implementation{}.Dsyrk(tc.ul, tc.tr, tc.n, tc.k, tc.alpha, a, lda, tc.beta, got, tc.ldc)
		if tc.exact && !slices.Equal(got, want) || !near(got, want) {
			t.Errorf("Dsyrk n=%d k=%d %c %c differs from gonum's", tc.n, tc.k, tc.ul, tc.tr)
		}
		for i := range tc.n {
			for j := range tc.ldc {
				inside := j <= i
				if tc.ul == blas.Upper {
					inside = j >= i && j < tc.n
				}
				if !inside && got[i*tc.ldc+j] != c0[i*tc.ldc+j] {
					t.Fatalf("Dsyrk n=%d %c wrote outside its triangle at (%d, %d)", tc.n, tc.ul, i, j)
				}
			}
		}
	}
}

// TestDgemm checks large products against gonum's; small ones are gonum's.
func TestDgemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct {
		m, n, k int
		tA, tB  blas.Transpose
		exact   bool
	}{
		{30, 40, 50, blas.NoTrans, blas.NoTrans, true},
		{300, 200, 100, blas.NoTrans, blas.Trans, false},
		{1023, 64, 96, blas.Trans, blas.NoTrans, false},
	} {
		ar, ac := tc.m, tc.k
		if tc.tA != blas.NoTrans {
			ar, ac = tc.k, tc.m
		}
		br, bc := tc.k, tc.n
		if tc.tB != blas.NoTrans {
			br, bc = tc.n, tc.k
		}
		a, b := randSlice(rng, ar*ac), randSlice(rng, br*bc)
		c0 := randSlice(rng, tc.m*tc.n)
		want, got := slices.Clone(c0), slices.Clone(c0)
		gonum.Implementation{}.Dgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 0.5, a, ac, b, bc, 1.5, want, tc.n)
		Implementation{}.Dgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 0.5, a, ac, b, bc, 1.5, got, tc.n)
		if tc.exact && !slices.Equal(got, want) || !near(got, want) {
			t.Errorf("Dgemm %d×%d×%d %c%c differs from gonum's", tc.m, tc.n, tc.k, tc.tA, tc.tB)
		}
	}
}
