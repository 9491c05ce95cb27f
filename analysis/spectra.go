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
	"gonum.org/v1/gonum/mat"
)

// BaseSpectrum is the decomposition of a pre-trained weight matrix W0 that
// intruder analysis needs: all singular values and all left singular vectors
// (thin: rows × min(rows, cols)). It is computed once per base model and
// cached (see BaseCache), never once per trial.
type BaseSpectrum struct {
	Rows, Cols int
	Sigma      []float64  // descending, length min(Rows, Cols)
	U          *mat.Dense // Rows × len(Sigma), column i pairs with Sigma[i]
}

// DecomposeBase computes the BaseSpectrum of w0.
func DecomposeBase(w0 mat.Matrix) (*BaseSpectrum, error) {
	return DecomposeBaseContext(context.Background(), w0)
}

// DecomposeBaseContext is DecomposeBase, returning ctx's error soon after
// ctx is done. A w0 holding a NaN or an infinity is refused with an error
// wrapping ErrNonFinite.
func DecomposeBaseContext(ctx context.Context, w0 mat.Matrix) (*BaseSpectrum, error) {
	r, c := w0.Dims()
	if r == 0 || c == 0 {
		return nil, errors.New("analysis: empty base matrix")
	}
	if err := checkFinite("base matrix", w0); err != nil {
		return nil, err
	}
	sig, u, err := leftSingular(ctx, w0, min(r, c))
	if err != nil {
		return nil, err
	}
	return &BaseSpectrum{Rows: r, Cols: c, Sigma: sig, U: u}, nil
}

// MaxCos returns max_i |⟨u, U0[:,i]⟩| over all base left singular vectors and
// the i attaining it. u must be a unit vector of length Rows. It costs one
// matrix–vector product, U0ᵀ·u.
func (b *BaseSpectrum) MaxCos(u []float64) (float64, int) {
	proj := make([]float64, b.U.RawMatrix().Cols)
	blas64.Gemv(blas.Trans, 1, b.U.RawMatrix(), blas64.Vector{N: len(u), Inc: 1, Data: u}, 0, blas64.Vector{N: len(proj), Inc: 1, Data: proj})
	best, at := -1.0, -1
	for i, p := range proj {
		if a := math.Abs(p); a > best {
			best, at = a, i
		}
	}
	return best, at
}

// SVDMethod picks how the top-k singular vectors of a tuned matrix are found.
type SVDMethod int

const (
	// Auto uses Exact up to autoExactMax on the short side and Randomized
	// above.
	Auto SVDMethod = iota
	// Exact uses the full tridiagonal eigen-solver on W·Wᵀ.
	Exact
	// Randomized uses a randomized block Krylov method until the top-k
	// residuals ‖W·Wᵀuⱼ − σⱼ²uⱼ‖ fall below Tol·σ₁².
	Randomized
)

// autoExactMax is where Auto switches to Randomized. Measured on 2 cores
// with the bench binary's BLAS (parblas; go test -bench Intruders, top 10
// of a Gaussian matrix plus a rank-8 update): Exact 0.11 s at 512, 0.20 s
// at 768 and 0.38 s at 1024; Randomized 0.09, 0.13 and 0.23 s. The
// trained layers of the builtin tasks (at most 256 on the short side) stay
// Exact.
const autoExactMax = 512

// TopKOptions configures TopK.
type TopKOptions struct {
	Method  SVDMethod
	Tol     float64 // randomized: residual tolerance relative to σ₁²; default 1e-6
	MaxIter int     // randomized: Krylov blocks at most; default 60
	Seed    uint64  // randomized: seed of the test matrix
}

// TopSpectrum holds the top-k singular triplets' left half of a matrix.
type TopSpectrum struct {
	Sigma []float64  // descending, length k
	U     *mat.Dense // rows × k
	// Residual is max_j ‖Wᵀuⱼ − σⱼvⱼ‖/σ₁ where vⱼ = Wᵀuⱼ/σⱼ would make it
	// zero; reported as max_j ‖W·Wᵀuⱼ − σⱼ²uⱼ‖/σ₁², the accuracy of uⱼ.
	Residual float64
	Iters    int // Krylov blocks used (0 for Exact)
}

// TopK returns the k largest singular values of w and their left singular
// vectors.
func TopK(w mat.Matrix, k int, opt TopKOptions) (*TopSpectrum, error) {
	return TopKContext(context.Background(), w, k, opt)
}

// TopKContext is TopK, returning ctx's error soon after ctx is done. A w
// holding a NaN or an infinity is refused with an error wrapping
// ErrNonFinite.
func TopKContext(ctx context.Context, w mat.Matrix, k int, opt TopKOptions) (*TopSpectrum, error) {
	r, c := w.Dims()
	if k <= 0 || k > min(r, c) {
		return nil, fmt.Errorf("analysis: top-k: k = %d out of range for %d×%d", k, r, c)
	}
	if err := checkFinite("tuned matrix", w); err != nil {
		return nil, err
	}
	method := opt.Method
	if method == Auto {
		method = Exact
		if min(r, c) > autoExactMax {
			method = Randomized
		}
	}
	if method == Exact {
		sig, u, err := leftSingular(ctx, w, k)
		if err != nil {
			return nil, err
		}
		return &TopSpectrum{Sigma: sig, U: u, Residual: residual(w, sig, u)}, nil
	}
	return randomizedTopK(ctx, w, k, opt)
}

// residual returns max_j ‖W·Wᵀuⱼ − σⱼ²uⱼ‖/σ₁².
func residual(w mat.Matrix, sig []float64, u *mat.Dense) float64 {
	if len(sig) == 0 || sig[0] == 0 {
		return 0
	}
	var wtu, wwtu mat.Dense
	wtu.Mul(w.T(), u)
	wwtu.Mul(w, &wtu)
	worst := 0.0
	for j, s := range sig {
		var d mat.VecDense
		d.AddScaledVec(wwtu.ColView(j), -s*s, u.ColView(j))
		worst = max(worst, mat.Norm(&d, 2))
	}
	return worst / (sig[0] * sig[0])
}

// randomizedTopK is a randomized block Krylov method (Musco & Musco 2015;
// Halko, Martinsson & Tropp 2011 for the range finder): it grows the basis
// [WΩ, (WWᵀ)WΩ, (WWᵀ)²WΩ, …], orthonormalised block by block, and takes
// Rayleigh–Ritz approximations from the whole basis until the top-k
// residuals are below tolerance. On flat spectra, where plain subspace
// iteration crawls, the Krylov basis needs several times fewer products.
//
// It stops after opt.MaxIter blocks at most, whatever the residual.
func randomizedTopK(ctx context.Context, w mat.Matrix, k int, opt TopKOptions) (*TopSpectrum, error) {
	r, c := w.Dims()
	tol, maxIter := opt.Tol, opt.MaxIter
	if tol <= 0 {
		tol = 1e-6
	}
	if maxIter <= 0 {
		maxIter = 60
	}
	b := min(k+oversample, min(r, c))
	rng := rand.New(rand.NewPCG(opt.Seed, 0x7a1c))
	omega := mat.NewDense(c, b, nil)
	for i := range c {
		for j := range b {
			omega.Set(i, j, rng.NormFloat64())
		}
	}
	var y mat.Dense
	y.Mul(w, omega)
	basis := orth(&y) // r×m, grows by b columns per step
	var wtq mat.Dense
	wtq.Mul(w.T(), basis) // c×m = Wᵀ·basis, grown alongside
	for it := 1; ; it++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m := basis.RawMatrix().Cols
		full := m+b > min(r, c) || it >= maxIter
		if it%2 == 0 || full {
			top, err := rayleighRitz(ctx, w, basis, &wtq, k)
			if err != nil {
				return nil, err
			}
			top.Iters = it
			if top.Residual <= tol || full {
				return top, nil
			}
		}
		// Next block: W·(Wᵀ·last), orthogonalised against the basis twice.
		var next mat.Dense
		next.Mul(w, wtq.Slice(0, c, m-b, m))
		for range 2 {
			var coef, proj mat.Dense
			coef.Mul(basis.T(), &next)
			proj.Mul(basis, &coef)
			next.Sub(&next, &proj)
		}
		last := orth(&next)
		var z mat.Dense
		z.Mul(w.T(), last)
		grown := mat.NewDense(r, m+b, nil)
		grown.Slice(0, r, 0, m).(*mat.Dense).Copy(basis)
		grown.Slice(0, r, m, m+b).(*mat.Dense).Copy(last)
		basis = grown
		gz := mat.NewDense(c, m+b, nil)
		gz.Slice(0, c, 0, m).(*mat.Dense).Copy(&wtq)
		gz.Slice(0, c, m, m+b).(*mat.Dense).Copy(&z)
		wtq = *gz
	}
}

// rayleighRitz returns the top-k left singular approximations of w from the
// span of the orthonormal columns of q, given wtq = Wᵀ·Q: the eigenpairs of
// QᵀWWᵀQ = (WᵀQ)ᵀ(WᵀQ) rotate Q. Its residual costs one more product.
func rayleighRitz(ctx context.Context, w mat.Matrix, q, wtq *mat.Dense, k int) (*TopSpectrum, error) {
	_, m := q.Dims()
	g := make([]float64, m*m)
	gd := mat.NewDense(m, m, g)
	gd.Mul(wtq.T(), wtq)
	lam, e, err := symTopEigen(ctx, g, m, k)
	if err != nil {
		return nil, err
	}
	var u, wtu, wwtu mat.Dense
	u.Mul(q, e)
	wtu.Mul(wtq, e)
	wwtu.Mul(w, &wtu)
	sig := make([]float64, k)
	worst := 0.0
	for j := range k {
		sig[j] = math.Sqrt(max(lam[j], 0))
		var d mat.VecDense
		d.AddScaledVec(wwtu.ColView(j), -lam[j], u.ColView(j))
		worst = max(worst, mat.Norm(&d, 2))
	}
	res := 0.0
	if lam[0] > 0 {
		res = worst / lam[0]
	}
	return &TopSpectrum{Sigma: sig, U: &u, Residual: res}, nil
}

// orth returns an orthonormal basis of the columns of a (the thin Q of its
// QR factorisation; a must have at least as many rows as columns).
func orth(a *mat.Dense) *mat.Dense {
	r, c := a.Dims()
	q := mat.DenseCopyOf(a)
	raw := q.RawMatrix()
	tau := make([]float64, c)
	work := make([]float64, 1)
	lapack64.Dgeqrf(r, c, raw.Data, raw.Stride, tau, work, -1)
	work = make([]float64, max(int(work[0]), 1))
	lapack64.Dgeqrf(r, c, raw.Data, raw.Stride, tau, work, len(work))
	lapack64.Dorgqr(r, c, c, raw.Data, raw.Stride, tau, work, -1)
	work = make([]float64, max(int(work[0]), 1))
	lapack64.Dorgqr(r, c, c, raw.Data, raw.Stride, tau, work, len(work))
	return q
}

// DefaultEpsilons are the intruder thresholds reported unless configured:
// 0.5 is the paper's default, the others span its sweep.
var DefaultEpsilons = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}

// IntruderOptions configures Intruders.
type IntruderOptions struct {
	K    int         // top tuned directions checked; default 10 (the paper's)
	Eps  []float64   // thresholds; default {0.5}
	TopK TopKOptions // how the tuned top-k vectors are found
}

// Direction is one top singular direction of the tuned matrix.
type Direction struct {
	Index    int     // j: rank of the direction in the tuned matrix
	Sigma    float64 // σⱼ of the tuned matrix
	MaxCos   float64 // max_i |cos(uⱼ, u0ᵢ)| over all base left singular vectors
	BaseBest int     // the i attaining MaxCos
	Intruder []bool  // MaxCos < Eps[e], per threshold
}

// IntruderReport is the intruder analysis of one (W0, W) pair.
type IntruderReport struct {
	K        int
	Eps      []float64
	Dirs     []Direction
	Counts   []int // intruder directions per threshold
	Residual float64
}

// Intruders finds the intruder dimensions of the tuned matrix w relative to
// its base, as defined by Shuttleworth et al. 2024 (arXiv 2410.21228,
// Algorithm 1): for each of the top k left singular vectors uⱼ of W, the
// maximum over all left singular vectors of W0 of |cos(uⱼ, u0ᵢ)|; uⱼ is an
// intruder when that maximum is below ε. W is the merged tuned matrix
// (W0 + ΔW). Counts sum over matrices by adding reports' Counts.
func Intruders(base *BaseSpectrum, w mat.Matrix, opt IntruderOptions) (*IntruderReport, error) {
	return IntrudersContext(context.Background(), base, w, opt)
}

// IntrudersContext is Intruders, returning ctx's error soon after ctx is
// done.
func IntrudersContext(ctx context.Context, base *BaseSpectrum, w mat.Matrix, opt IntruderOptions) (*IntruderReport, error) {
	r, c := w.Dims()
	if r != base.Rows || c != base.Cols {
		return nil, fmt.Errorf("analysis: intruders: tuned %d×%d, base %d×%d", r, c, base.Rows, base.Cols)
	}
	k := opt.K
	if k == 0 {
		k = 10
	}
	k = min(k, min(r, c))
	eps := opt.Eps
	if len(eps) == 0 {
		eps = []float64{0.5}
	}
	top, err := TopKContext(ctx, w, k, opt.TopK)
	if err != nil {
		return nil, err
	}
	rep := &IntruderReport{K: k, Eps: slices.Clone(eps), Counts: make([]int, len(eps)), Residual: top.Residual}
	// All k projections at once: P = U0ᵀ·Ut (one GEMM, = k GEMVs).
	var p mat.Dense
	p.Mul(base.U.T(), top.U)
	for j := range k {
		d := Direction{Index: j, Sigma: top.Sigma[j], MaxCos: -1, Intruder: make([]bool, len(eps))}
		for i := range p.RawMatrix().Rows {
			if a := math.Abs(p.At(i, j)); a > d.MaxCos {
				d.MaxCos, d.BaseBest = a, i
			}
		}
		for e, th := range eps {
			if d.MaxCos < th {
				d.Intruder[e] = true
				rep.Counts[e]++
			}
		}
		rep.Dirs = append(rep.Dirs, d)
	}
	return rep, nil
}

// SingularValues returns all singular values of w, descending (Dgesvd
// without vectors). A w holding a NaN or an infinity is refused with an
// error wrapping ErrNonFinite.
func SingularValues(w mat.Matrix) ([]float64, error) {
	if err := checkFinite("matrix", w); err != nil {
		return nil, err
	}
	var svd mat.SVD
	if !svd.Factorize(w, mat.SVDNone) {
		return nil, errors.New("analysis: singular values: SVD did not converge")
	}
	return svd.Values(nil), nil
}

// EffectiveRank is exp(H(p)) with pᵢ = σᵢ/Σσ and H the Shannon entropy in
// nats (Roy & Vetterli 2007), the measure Shuttleworth et al. report. It is
// n for n equal singular values and 1 for a rank-1 matrix; 0 for an all-zero
// spectrum.
func EffectiveRank(sigma []float64) float64 {
	sum := 0.0
	for _, s := range sigma {
		sum += math.Abs(s)
	}
	if sum == 0 {
		return 0
	}
	h := 0.0
	for _, s := range sigma {
		if p := math.Abs(s) / sum; p > 0 {
			h -= p * math.Log(p)
		}
	}
	return math.Exp(h)
}

// EnergyRank is the smallest r whose top-r singular values hold at least the
// fraction frac of the spectral energy Σσᵢ² = ‖ΔW‖²_F: the "rank needed to
// explain 90% of the variance" of Biderman et al. 2024 (arXiv 2405.09673)
// with frac = 0.9. sigma must be descending; 0 for an all-zero spectrum.
func EnergyRank(sigma []float64, frac float64) int {
	total := 0.0
	for _, s := range sigma {
		total += s * s
	}
	if total == 0 {
		return 0
	}
	acc := 0.0
	for i, s := range sigma {
		acc += s * s
		// Relative slack so exactly frac of the energy counts as enough.
		if acc >= frac*total*(1-1e-12) {
			return i + 1
		}
	}
	return len(sigma)
}

// LayerSpectrum is what one targeted matrix contributes to spectra.parquet
// and to a trial's summary columns.
type LayerSpectrum struct {
	BaseSigma       []float64 // top k of W0
	Intruders       *IntruderReport
	DeltaSigma      []float64 // all singular values of ΔW = W − W0
	EffRankDelta    float64   // EffectiveRank(DeltaSigma)
	EnergyRank90    int       // EnergyRank(DeltaSigma, 0.9)
	EffRankBaseFull float64   // EffectiveRank(base.Sigma)
}

// AnalyzeLayer runs the intruder analysis of w against base and the spectral
// summaries of ΔW = w − W0. w0 must be the matrix base was computed from.
func AnalyzeLayer(base *BaseSpectrum, w0, w mat.Matrix, opt IntruderOptions) (*LayerSpectrum, error) {
	return AnalyzeLayerContext(context.Background(), base, w0, w, opt)
}

// AnalyzeLayerContext is AnalyzeLayer, returning ctx's error soon after ctx
// is done (its full SVD of ΔW, one LAPACK call, is not interrupted).
func AnalyzeLayerContext(ctx context.Context, base *BaseSpectrum, w0, w mat.Matrix, opt IntruderOptions) (*LayerSpectrum, error) {
	rep, err := IntrudersContext(ctx, base, w, opt)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var delta mat.Dense
	delta.Sub(w, w0)
	ds, err := SingularValues(&delta)
	if err != nil {
		return nil, err
	}
	return &LayerSpectrum{
		BaseSigma:       slices.Clone(base.Sigma[:rep.K]),
		Intruders:       rep,
		DeltaSigma:      ds,
		EffRankDelta:    EffectiveRank(ds),
		EnergyRank90:    EnergyRank(ds, 0.9),
		EffRankBaseFull: EffectiveRank(base.Sigma),
	}, nil
}

// TotalCounts sums intruder counts per threshold over the targeted matrices
// of a model, the quantity the paper reports. All reports must share Eps.
func TotalCounts(reports []*IntruderReport) ([]int, error) {
	if len(reports) == 0 {
		return nil, nil
	}
	total := make([]int, len(reports[0].Eps))
	for i, r := range reports {
		if !slices.Equal(r.Eps, reports[0].Eps) {
			return nil, fmt.Errorf("analysis: intruder report %d has thresholds %v, want %v", i, r.Eps, reports[0].Eps)
		}
		for e, c := range r.Counts {
			total[e] += c
		}
	}
	return total, nil
}
