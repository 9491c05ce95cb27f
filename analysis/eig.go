package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"
)

var lapack64 gonum.Implementation

// oversample is the Krylov block size beyond k.
var oversample = 10

// leftSingular returns the nvec largest singular values of w (descending) and
// the matching left singular vectors as the columns of an r×nvec matrix.
//
// It works on the Gram matrix G = W·Wᵀ: a blocked tridiagonal reduction
// (Dsytrd), all eigenvalues of the tridiagonal matrix (Dsterf), eigenvectors
// of the wanted ones only by inverse iteration with reorthogonalisation
// inside clusters (as LAPACK's Dstein), and the back-transformation applied
// to those vectors alone (Dormqr). In pure Go this is several times faster
// than Dgesvd, whose implicit-QR rotations over the full U dominate. Squaring
// costs accuracy only for singular values below √ε·σ₁, whose vectors are
// not determined by the data anyway. Tall matrices are first reduced by a
// thin QR factorisation, W = Q·R, so the Gram matrix is never larger than
// min(r, c)².
//
// It returns ctx's error as soon as it sees ctx done (between stages and
// between eigenvectors), and an error, never a loop, when the solve fails.
func leftSingular(ctx context.Context, w mat.Matrix, nvec int) ([]float64, *mat.Dense, error) {
	return leftSingularFloor(ctx, w, nvec, 0)
}

// tailRatio is where leftSingularFloor starts refining: vectors whose σ is
// below tailRatio·σ₁ are recomputed from the projection of W on their span.
const tailRatio = 1e-4

// leftSingularFloor is leftSingular; singular values below floor are treated
// as numerically zero and not refined.
//
// Squaring W leaves the eigenvectors of σ ≪ √ε·σ₁ mixed among themselves,
// but their span is accurate. When all vectors are wanted, the tail (σ below
// tailRatio·σ₁) is therefore refined by Rayleigh–Ritz: the left singular
// vectors of Qₜᵀ·W, itself decomposed this way, rotate Qₜ. Each level gains
// a factor 1/tailRatio of relative range, so graded spectra come out right.
func leftSingularFloor(ctx context.Context, w mat.Matrix, nvec int, floor float64) ([]float64, *mat.Dense, error) {
	sig, u, err := leftSingularGram(ctx, w, nvec, floor)
	if err != nil || nvec == 0 || nvec < min(w.Dims()) {
		return sig, u, err
	}
	t := len(sig)
	for i, s := range sig {
		if s < tailRatio*sig[0] {
			t = i
			break
		}
	}
	eps := math.Nextafter(1, 2) - 1
	if floor == 0 {
		floor = eps * sig[0] * float64(max(w.Dims()))
	}
	if t == 0 || t == len(sig) || sig[t] <= floor {
		return sig, u, nil
	}
	r, c := w.Dims()
	m := len(sig) - t
	qt := u.Slice(0, r, t, len(sig))
	var p mat.Dense
	p.Mul(qt.T(), w) // m×c
	sigT, uT, err := leftSingularFloor(ctx, &p, m, floor)
	if err != nil {
		return nil, nil, err
	}
	var ut mat.Dense
	ut.Mul(qt, uT)
	u.Slice(0, r, t, len(sig)).(*mat.Dense).Copy(&ut)
	copy(sig[t:], sigT)
	_ = c
	return sig, u, nil
}

func leftSingularGram(ctx context.Context, w mat.Matrix, nvec int, floor float64) ([]float64, *mat.Dense, error) {
	r, c := w.Dims()
	n := min(r, c)
	if nvec < 0 || nvec > n {
		return nil, nil, errors.New("analysis: number of singular vectors out of range")
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if r > c {
		q := orth(mat.DenseCopyOf(w)) // r×c
		var rr mat.Dense
		rr.Mul(q.T(), w) // c×c, the R factor up to rounding
		sig, ur, err := leftSingularGram(ctx, &rr, nvec, floor)
		if err != nil {
			return nil, nil, err
		}
		var u mat.Dense
		u.Mul(q, ur)
		return sig, &u, nil
	}
	// G = W·Wᵀ, r×r, lower triangle.
	wd := mat.DenseCopyOf(w)
	g := make([]float64, r*r)
	blas64.Syrk(blas.NoTrans, 1, wd.RawMatrix(), 0, blas64.Symmetric{N: r, Stride: r, Data: g, Uplo: blas.Lower})
	if !finite(g) {
		// A finite W whose entries pass √MaxFloat64 overflows W·Wᵀ.
		return nil, nil, fmt.Errorf("analysis: W·Wᵀ of a %d×%d matrix overflows (%w)", r, c, ErrNonFinite)
	}
	lam, z, err := symTopEigen(ctx, g, r, nvec)
	if err != nil {
		return nil, nil, err
	}
	if !finite(lam) {
		return nil, nil, fmt.Errorf("analysis: eigenvalues of W·Wᵀ of a %d×%d matrix overflow (%w)", r, c, ErrNonFinite)
	}
	sig := make([]float64, len(lam))
	for i, l := range lam {
		sig[i] = math.Sqrt(max(l, 0))
	}
	return sig, z, nil
}

// symTopEigen returns the nvec largest eigenvalues (descending) and
// eigenvectors of the n×n symmetric matrix whose lower triangle is in a
// (row-major, overwritten).
func symTopEigen(ctx context.Context, a []float64, n, nvec int) ([]float64, *mat.Dense, error) {
	if n == 0 || nvec == 0 {
		return nil, mat.NewDense(max(n, 1), max(nvec, 1), nil).Slice(0, max(n, 1), 0, 0).(*mat.Dense), nil
	}
	if !finite(a) {
		return nil, nil, fmt.Errorf("analysis: symmetric eigenproblem of order %d holds a NaN or an infinity (%w)", n, ErrNonFinite)
	}
	d := make([]float64, n)
	e := make([]float64, max(n-1, 1))
	tau := make([]float64, max(n-1, 1))
	work := make([]float64, 1)
	lapack64.Dsytrd(blas.Lower, n, a, n, d, e[:n-1], tau[:n-1], work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Dsytrd(blas.Lower, n, a, n, d, e[:n-1], tau[:n-1], work, len(work))

	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	lam, z, err := tridiagTopEigen(ctx, d, e[:n-1], nvec)
	if err != nil {
		return nil, nil, err
	}

	// Back-transform: Q = diag(1, Q'), Q' = H_0⋯H_{n-2} stored QR-style in
	// a[1:, 0:n-1].
	if n > 1 {
		zr := z.RawMatrix()
		work = make([]float64, 1)
		lapack64.Dormqr(blas.Left, blas.NoTrans, n-1, nvec, n-1, a[n:], n, tau[:n-1], zr.Data[zr.Stride:], zr.Stride, work, -1)
		work = make([]float64, int(work[0]))
		lapack64.Dormqr(blas.Left, blas.NoTrans, n-1, nvec, n-1, a[n:], n, tau[:n-1], zr.Data[zr.Stride:], zr.Stride, work, len(work))
	}
	return lam, z, nil
}

// tridiagTopEigen returns the nvec largest eigenvalues (descending) of the
// symmetric tridiagonal matrix with diagonal d and off-diagonal e, and their
// eigenvectors as columns of an n×nvec matrix. The matrix is split where an
// off-diagonal entry is negligible; each eigenvector is found by inverse
// iteration inside its block.
//
// Every loop is bounded: Dsterf's own iteration limit is reported as an
// error, and a shifted solve that keeps failing (a singular or overflowing
// system) gives up after maxShifts perturbations of the shift.
func tridiagTopEigen(ctx context.Context, d, e []float64, nvec int) ([]float64, *mat.Dense, error) {
	n := len(d)
	if !finite(d) || !finite(e) {
		return nil, nil, fmt.Errorf("analysis: tridiagonal eigenproblem of order %d holds a NaN or an infinity (%w)", n, ErrNonFinite)
	}
	// A matrix whose entries are all huge or all tiny is solved scaled by
	// a power of two (exact; the eigenvectors are the same), so neither
	// Dsterf's rescaling nor the shifted solves overflow or underflow.
	// Matrices in range, every Gram matrix of float32 weights among them,
	// are not touched.
	if scale := powerOfTwoScale(max(maxAbs(d), maxAbs(e))); scale != 1 {
		ds, es := slices.Clone(d), slices.Clone(e)
		for i := range ds {
			ds[i] /= scale
		}
		for i := range es {
			es[i] /= scale
		}
		lam, z, err := tridiagTopEigen(ctx, ds, es, nvec)
		for i := range lam {
			lam[i] *= scale
		}
		return lam, z, err
	}
	eps := math.Nextafter(1, 2) - 1
	// Split into unreduced blocks [lo, hi).
	type block struct{ lo, hi int }
	var blocks []block
	lo := 0
	for i := 0; i < n-1; i++ {
		if math.Abs(e[i]) <= eps*math.Sqrt(math.Abs(d[i]))*math.Sqrt(math.Abs(d[i+1])) {
			blocks = append(blocks, block{lo, i + 1})
			lo = i + 1
		}
	}
	blocks = append(blocks, block{lo, n})

	type eig struct {
		val float64
		blk int
	}
	eigs := make([]eig, 0, n)
	for bi, b := range blocks {
		m := b.hi - b.lo
		dd := slices.Clone(d[b.lo:b.hi])
		if m > 1 {
			ee := slices.Clone(e[b.lo : b.hi-1])
			// gonum's Dsterf panics when it would rescale a block (its
			// largest entry beyond about 2^509 or below 2^-405): a block
			// still out of that range after the matrix's scaling is scaled
			// here, for its eigenvalues alone.
			scale := powerOfTwoScale(max(maxAbs(dd), maxAbs(ee)))
			if scale != 1 {
				for i := range dd {
					dd[i] /= scale
				}
				for i := range ee {
					ee[i] /= scale
				}
			}
			if !lapack64.Dsterf(m, dd, ee) {
				return nil, nil, fmt.Errorf("analysis: eigenvalues of a tridiagonal block of order %d did not converge", m)
			}
			if scale != 1 {
				for i := range dd {
					dd[i] *= scale
				}
			}
		}
		for _, v := range dd {
			eigs = append(eigs, eig{v, bi})
		}
	}
	slices.SortStableFunc(eigs, func(x, y eig) int {
		switch {
		case x.val > y.val:
			return -1
		case x.val < y.val:
			return 1
		}
		return x.blk - y.blk
	})
	eigs = eigs[:nvec]

	z := mat.NewDense(n, nvec, nil)
	lam := make([]float64, nvec)
	rng := rand.New(rand.NewPCG(0x5eed, uint64(n)))
	// Per block: vectors already found, to reorthogonalise within clusters.
	type found struct {
		val float64
		vec []float64
	}
	done := make(map[int][]found)
	for j, ev := range eigs {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		lam[j] = ev.val
		b := blocks[ev.blk]
		m := b.hi - b.lo
		if m == 1 {
			z.Set(b.lo, j, 1)
			continue
		}
		dd, ee := d[b.lo:b.hi], e[b.lo:b.hi-1]
		norm := 0.0
		for i := range m {
			s := math.Abs(dd[i])
			if i > 0 {
				s += math.Abs(ee[i-1])
			}
			if i < m-1 {
				s += math.Abs(ee[i])
			}
			norm = max(norm, s)
		}
		ortol := 1e-3 * norm
		pertol := 10 * eps * max(norm, math.SmallestNonzeroFloat64)
		// Separate the shift from previous (larger) eigenvalues in the
		// same cluster, as Dstein does, so the iterations differ.
		shift := ev.val
		var cluster [][]float64
		for _, f := range done[ev.blk] {
			if math.Abs(f.val-ev.val) <= ortol {
				cluster = append(cluster, f.vec)
				if shift > f.val-pertol {
					shift = f.val - pertol
				}
			}
		}
		x := make([]float64, m)
		for i := range x {
			x[i] = 2*rng.Float64() - 1
		}
		dl, dg, du := make([]float64, m-1), make([]float64, m), make([]float64, m-1)
		for it := 0; it < 4; it++ {
			for attempt := 0; ; attempt++ {
				if attempt == maxShifts {
					return nil, nil, fmt.Errorf("analysis: inverse iteration for eigenvalue %d (%g) of a tridiagonal block of order %d: the shifted solve failed %d times", j, ev.val, m, maxShifts)
				}
				copy(dl, ee)
				copy(du, ee)
				for i := range dg {
					dg[i] = dd[i] - shift
				}
				y := slices.Clone(x)
				if gtsv(m, dl, dg, du, y) && finite(y) {
					x = y
					break
				}
				shift -= pertol * float64(attempt+1)
			}
			for range 2 {
				for _, v := range cluster {
					dot := blas64.Dot(blas64.Vector{N: m, Inc: 1, Data: x}, blas64.Vector{N: m, Inc: 1, Data: v})
					for i := range x {
						x[i] -= dot * v[i]
					}
				}
			}
			nrm := blas64.Nrm2(blas64.Vector{N: m, Inc: 1, Data: x})
			if nrm == 0 {
				for i := range x {
					x[i] = 2*rng.Float64() - 1
				}
				continue
			}
			for i := range x {
				x[i] /= nrm
			}
		}
		done[ev.blk] = append(done[ev.blk], found{ev.val, x})
		for i, v := range x {
			z.Set(b.lo+i, j, v)
		}
	}
	return lam, z, nil
}

// maxShifts bounds the perturbations of an inverse-iteration shift whose
// solve failed. A singular shifted system is cured by the first (the
// shift moves by a multiple of 10ε‖T‖); only input that is not finite, or
// a solve that overflows whatever the shift, gets near the bound.
const maxShifts = 100

// gtsv solves a tridiagonal system (Dgtsv, one right-hand side); a
// variable so that a test can make it fail.
var gtsv = func(n int, dl, d, du, b []float64) bool { return lapack64.Dgtsv(n, 1, dl, d, du, b, 1) }

// powerOfTwoScale returns 1 for a largest magnitude anorm inside
// [2^-400, 2^500] (or 0), else the power of two that brings it into [1, 2).
func powerOfTwoScale(anorm float64) float64 {
	if anorm == 0 || (anorm >= 0x1p-400 && anorm <= 0x1p500) {
		return 1
	}
	_, exp := math.Frexp(anorm) // anorm = f·2^exp, f in [0.5, 1)
	return math.Ldexp(1, exp-1)
}

// ErrNonFinite is wrapped by the error of an analysis refused because its
// input holds a NaN or an infinity (or overflows to one).
var ErrNonFinite = errors.New("only finite matrices can be analysed")

// checkFinite returns an error naming what (e.g. "base matrix") and the
// first NaN or infinity of w, row-major, or nil when w is finite.
func checkFinite(what string, w mat.Matrix) error {
	r, c := w.Dims()
	if d, ok := w.(*mat.Dense); ok {
		raw := d.RawMatrix()
		for i := range r {
			row := raw.Data[i*raw.Stride : i*raw.Stride+c]
			if finite(row) {
				continue
			}
			for j, v := range row {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return nonFinite(what, v, i, j)
				}
			}
		}
		return nil
	}
	for i := range r {
		for j := range c {
			if v := w.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				return nonFinite(what, v, i, j)
			}
		}
	}
	return nil
}

// checkFinite32 is checkFinite for a row-major float32 matrix with cols
// columns.
func checkFinite32(what string, v []float32, cols int) error {
	for k, x := range v {
		if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
			return nonFinite(what, f, k/max(cols, 1), k%max(cols, 1))
		}
	}
	return nil
}

func nonFinite(what string, v float64, i, j int) error {
	return fmt.Errorf("analysis: %s holds %v at row %d, column %d (%w)", what, v, i, j, ErrNonFinite)
}

func maxAbs(x []float64) float64 {
	m := 0.0
	for _, v := range x {
		m = max(m, math.Abs(v))
	}
	return m
}

func finite(x []float64) bool {
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
