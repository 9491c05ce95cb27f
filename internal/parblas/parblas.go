// Package parblas is gonum's pure-Go BLAS with the routines of a
// symmetric eigendecomposition made fast, for the spectral analysis of
// large weight matrices. gonum runs them on one goroutine at a few GFLOP/s:
//
//   - Dsymv, the memory-bound symmetric matrix–vector product of each
//     reflector of LAPACK's tridiagonal reduction (Dsytrd), is split into
//     a fixed number of row blocks of equal work, each accumulating into a
//     vector of its own, summed in block order;
//   - Dgemm, Dsyrk (the Gram matrix) and Dsyr2k (Dsytrd's trailing update)
//     run large products on kernels.Dgemm, the project's AVX2 kernel;
//     without AVX2, Dsyr2k is split into row blocks like Dsymv.
//
// Splits depend only on the sizes, never on GOMAXPROCS, so results do not
// depend on the machine's core count; small calls (below parallelMin, or
// gemmMin multiply–adds) are gonum's own, bit for bit. Install it with
// blas64.Use(parblas.Implementation{}) in a program's main; gonum's LAPACK
// (and gonum/mat) then use it.
package parblas

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"peftbench/kernels"
)

// Implementation is gonum.Implementation with parallel Dsymv and Dsyr2k,
// and Dgemm, Dsyrk and Dsyr2k on the project's AVX2 kernel
// (kernels.Dgemm) for large products.
type Implementation struct{ gonum.Implementation }

const (
	// parallelMin is the smallest n that is split: below it the operands
	// fit in cache and goroutines cost more than they save.
	parallelMin = 512
	// blocks is the fixed number of row blocks: enough for the machines
	// this runs on, and a constant so the summation order is too.
	blocks = 4
	// gemmMin is the smallest m·n·k handed to kernels.Dgemm: large enough
	// that the layers of the builtin tasks (at most 784 on a side, analysed
	// with products of at most about 2.5·10⁶) keep gonum's results bit for
	// bit, small enough for every product of a 1024² decomposition's
	// back-transformation and randomized top-k.
	gemmMin = 1 << 22
)

// Dgemm computes C = alpha·op(A)·op(B) + beta·C; large products run on
// kernels.Dgemm (about 5× gonum's speed per core with AVX2), the rest on
// gonum.
func (impl Implementation) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if !kernels.DgemmFast() || m*n*k < gemmMin {
		impl.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	kernels.Dgemm(tA != blas.NoTrans, tB != blas.NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dsymv computes y = alpha·A·x + beta·y for a symmetric n×n A of which
// only the ul triangle is referenced.
func (impl Implementation) Dsymv(ul blas.Uplo, n int, alpha float64, a []float64, lda int, x []float64, incX int, beta float64, y []float64, incY int) {
	if ul != blas.Lower || n < parallelMin || incX <= 0 || incY <= 0 || lda < n ||
		len(a) < lda*(n-1)+n || len(x) < (n-1)*incX+1 || len(y) < (n-1)*incY+1 || alpha == 0 {
		impl.Implementation.Dsymv(ul, n, alpha, a, lda, x, incX, beta, y, incY)
		return
	}
	// LAPACK's Dlatrd passes a column of a row-major matrix: gather it.
	xc := x[:n]
	if incX != 1 {
		xs := getScratch(n)
		defer putScratch(xs)
		xc = *xs
		for i := range xc {
			xc[i] = x[i*incX]
		}
	}
	bounds := split(n)
	accs := getScratch(blocks * n)
	defer putScratch(accs)
	acc := *accs
	clear(acc)
	var wg sync.WaitGroup
	for b := range blocks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			yb := acc[b*n : (b+1)*n]
			for i := bounds[b]; i < bounds[b+1]; i++ {
				row := a[i*lda : i*lda+i+1]
				xi := xc[i]
				// Row i left of the diagonal is column i above it: one
				// pass gives y[i]'s dot product and y[:i]'s update.
				yb[i] += impl.Ddot(i, row, 1, xc, 1) + row[i]*xi
				impl.Daxpy(i, xi, row, 1, yb, 1)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		s := 0.0
		for b := range blocks {
			s += acc[b*n+i]
		}
		yi := &y[i*incY]
		if beta == 0 {
			*yi = alpha * s
		} else {
			*yi = beta**yi + alpha*s
		}
	}
}

// Dsyr2k computes C = alpha·(A·Bᵀ + B·Aᵀ) + beta·C on the ul triangle of
// the n×n C, or with tA = Trans C = alpha·(Aᵀ·B + Bᵀ·A) + beta·C. The
// trailing update of Dsytrd (lower, no transpose, beta = 1) is split into
// row blocks of equal work: each block's part left of the diagonal is two
// general products, its diagonal block a smaller Dsyr2k.
func (impl Implementation) Dsyr2k(ul blas.Uplo, tA blas.Transpose, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if ul != blas.Lower || tA != blas.NoTrans || beta != 1 || n < parallelMin || k == 0 || alpha == 0 ||
		lda < k || ldb < k || ldc < n || len(a) < lda*(n-1)+k || len(b) < ldb*(n-1)+k || len(c) < ldc*(n-1)+n {
		impl.Implementation.Dsyr2k(ul, tA, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if kernels.DgemmFast() && n*n*k >= gemmMin {
		// T = A·Bᵀ on the AVX2 kernel, then C += alpha·(T + Tᵀ) below
		// the diagonal: the same flops as the two triangular products.
		ts := getScratch(n * n)
		defer putScratch(ts)
		t := *ts
		kernels.Dgemm(false, true, n, n, k, 1, a, lda, b, ldb, 0, t, n)
		for i := range n {
			ci := c[i*ldc : i*ldc+i+1]
			for j := range ci {
				ci[j] += alpha * (t[i*n+j] + t[j*n+i])
			}
		}
		return
	}
	bounds := split(n)
	var wg sync.WaitGroup
	for blk := range blocks {
		r0, r1 := bounds[blk], bounds[blk+1]
		if r0 == r1 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := r1 - r0
			if r0 > 0 {
				// C[r0:r1, :r0] += alpha·(A[r0:r1]·B[:r0]ᵀ + B[r0:r1]·A[:r0]ᵀ).
				impl.Implementation.Dgemm(blas.NoTrans, blas.Trans, m, r0, k, alpha, a[r0*lda:], lda, b, ldb, 1, c[r0*ldc:], ldc)
				impl.Implementation.Dgemm(blas.NoTrans, blas.Trans, m, r0, k, alpha, b[r0*ldb:], ldb, a, lda, 1, c[r0*ldc:], ldc)
			}
			impl.Implementation.Dsyr2k(blas.Lower, blas.NoTrans, m, k, alpha, a[r0*lda:], lda, b[r0*ldb:], ldb, 1, c[r0*ldc+r0:], ldc)
		}()
	}
	wg.Wait()
}

// Dsyrk computes C = alpha·A·Aᵀ + beta·C (or alpha·Aᵀ·A + beta·C with
// t = Trans) on the ul triangle of the n×n C. A large one runs as a full
// product on kernels.Dgemm (twice the flops at several times the speed)
// of which the triangle is kept.
func (impl Implementation) Dsyrk(ul blas.Uplo, t blas.Transpose, n, k int, alpha float64, a []float64, lda int, beta float64, c []float64, ldc int) {
	ar, ac := n, k
	if t != blas.NoTrans {
		ar, ac = k, n
	}
	if !kernels.DgemmFast() || n*n*k < gemmMin || alpha == 0 || k == 0 ||
		lda < ac || ldc < n || len(a) < lda*(ar-1)+ac || len(c) < ldc*(n-1)+n {
		impl.Implementation.Dsyrk(ul, t, n, k, alpha, a, lda, beta, c, ldc)
		return
	}
	fs := getScratch(n * n)
	defer putScratch(fs)
	full := *fs
	tr := t != blas.NoTrans
	kernels.Dgemm(tr, !tr, n, n, k, alpha, a, lda, a, lda, 0, full, n)
	for i := range n {
		lo, hi := 0, i+1
		if ul == blas.Upper {
			lo, hi = i, n
		}
		for j := lo; j < hi; j++ {
			v := full[i*n+j]
			if beta != 0 {
				v += beta * c[i*ldc+j]
			}
			c[i*ldc+j] = v
		}
	}
}

// split returns the bounds of blocks row ranges of an n×n lower triangle
// holding equal shares of its entries: bounds[b] = n·√(b/blocks).
func split(n int) [blocks + 1]int {
	var bounds [blocks + 1]int
	for b := range bounds {
		bounds[b] = int(math.Round(float64(n) * math.Sqrt(float64(b)/blocks)))
	}
	return bounds
}

// scratch recycles the work vectors and matrices of the routines above:
// Dsytrd calls them once per column, and a fresh n×n buffer a call made
// a 1024² decomposition allocate (and clear) some 300 MB. Every user
// overwrites or clears what it takes.
var scratch sync.Pool

func getScratch(n int) *[]float64 {
	if p, ok := scratch.Get().(*[]float64); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float64, n)
	return &s
}

func putScratch(p *[]float64) { scratch.Put(p) }
