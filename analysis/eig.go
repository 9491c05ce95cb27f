package analysis

import (
	"errors"
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
func leftSingular(w mat.Matrix, nvec int) ([]float64, *mat.Dense, error) {
	return leftSingularFloor(w, nvec, 0)
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
func leftSingularFloor(w mat.Matrix, nvec int, floor float64) ([]float64, *mat.Dense, error) {
	sig, u, err := leftSingularGram(w, nvec, floor)
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
	sigT, uT, err := leftSingularFloor(&p, m, floor)
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

func leftSingularGram(w mat.Matrix, nvec int, floor float64) ([]float64, *mat.Dense, error) {
	r, c := w.Dims()
	n := min(r, c)
	if nvec < 0 || nvec > n {
		return nil, nil, errors.New("analysis: number of singular vectors out of range")
	}
	if r > c {
		q := orth(mat.DenseCopyOf(w)) // r×c
		var rr mat.Dense
		rr.Mul(q.T(), w) // c×c, the R factor up to rounding
		sig, ur, err := leftSingularGram(&rr, nvec, floor)
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
	lam, z, err := symTopEigen(g, r, nvec)
	if err != nil {
		return nil, nil, err
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
func symTopEigen(a []float64, n, nvec int) ([]float64, *mat.Dense, error) {
	if n == 0 || nvec == 0 {
		return nil, mat.NewDense(max(n, 1), max(nvec, 1), nil).Slice(0, max(n, 1), 0, 0).(*mat.Dense), nil
	}
	d := make([]float64, n)
	e := make([]float64, max(n-1, 1))
	tau := make([]float64, max(n-1, 1))
	work := make([]float64, 1)
	lapack64.Dsytrd(blas.Lower, n, a, n, d, e[:n-1], tau[:n-1], work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Dsytrd(blas.Lower, n, a, n, d, e[:n-1], tau[:n-1], work, len(work))

	lam, z := tridiagTopEigen(d, e[:n-1], nvec)

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
func tridiagTopEigen(d, e []float64, nvec int) ([]float64, *mat.Dense) {
	n := len(d)
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
			lapack64.Dsterf(m, dd, ee)
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
				copy(dl, ee)
				copy(du, ee)
				for i := range dg {
					dg[i] = dd[i] - shift
				}
				y := slices.Clone(x)
				if lapack64.Dgtsv(m, 1, dl, dg, du, y, 1) && finite(y) {
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
	return lam, z
}

func finite(x []float64) bool {
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
