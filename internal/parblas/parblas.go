// Package parblas is gonum's pure-Go BLAS with the two routines of a
// symmetric eigendecomposition's tridiagonal reduction (LAPACK's Dsytrd)
// run on every core: Dsymv, the memory-bound symmetric matrix–vector
// product of each reflector, and Dsyr2k, the rank-2k trailing update,
// each half of Dsytrd's flops. gonum runs both on one goroutine; here a
// large one is split into a fixed number of row blocks of equal work
// (Dsymv's accumulate into vectors of their own, summed in block order).
//
// The split depends only on n, never on GOMAXPROCS, so results are
// bit-identical on any machine; below parallelMin they are gonum's own,
// bit for bit. Install it with blas64.Use(parblas.Implementation{}) in a
// program's main; gonum's LAPACK (and gonum/mat) then use it.
package parblas

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is gonum.Implementation with parallel Dsymv and Dsyr2k.
type Implementation struct{ gonum.Implementation }

const (
	// parallelMin is the smallest n that is split: below it the operands
	// fit in cache and goroutines cost more than they save.
	parallelMin = 512
	// blocks is the fixed number of row blocks: enough for the machines
	// this runs on, and a constant so the summation order is too.
	blocks = 4
)

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
		xc = make([]float64, n)
		for i := range xc {
			xc[i] = x[i*incX]
		}
	}
	bounds := split(n)
	acc := make([]float64, blocks*n)
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

// split returns the bounds of blocks row ranges of an n×n lower triangle
// holding equal shares of its entries: bounds[b] = n·√(b/blocks).
func split(n int) [blocks + 1]int {
	var bounds [blocks + 1]int
	for b := range bounds {
		bounds[b] = int(math.Round(float64(n) * math.Sqrt(float64(b)/blocks)))
	}
	return bounds
}
