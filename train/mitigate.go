package train

import (
	"context"
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// MitigationOptions configures MitigateIntruders: HF PEFT's
// reduce_intruder_dimension arguments, with its defaults for zero values.
type MitigationOptions struct {
	Lambda float64 // mitigation_lambda: the share of each intruder direction kept; 1 changes nothing
	Eps    float64 // threshold_epsilon; default 0.5
	K      int     // top_k tuned directions checked; default 10
}

// Mitigation is MitigateIntruders' result for one matrix.
type Mitigation struct {
	W         *mat.Dense // the mitigated merged weight
	Intruders []int      // indices j (into W's singular directions) rescaled
}

// MitigateIntruders applies HF PEFT's intruder-dimension mitigation
// (peft.tuners.lora.intruders.reduce_intruder_dimension, after Shuttleworth
// et al. 2024, arXiv 2410.21228) to a merged tuned weight w = W0 + ΔW of
// base weight w0: with W = U·diag(σ)·Vᵀ (thin SVD), direction j < K is an
// intruder when max_i |⟨u_j, u0_i⟩| over all left singular vectors of W0
// is below Eps (the test of analysis.Intruders), and
//
//	W' = W + (λ − 1) · Σ_{j ∈ intruders} σ_j · u_j · v_jᵀ
//
// so each intruder's singular value is scaled by λ and nothing else moves.
// With no intruder, or λ = 1, W' is W exactly. HF PEFT then re-factors
// (W' − W0)/s into a rank-r LoRA adapter by truncated SVD, because it must
// store the result as a LoRA adapter; the merged weight is what a trial
// evaluates here, for any method, so W' is kept as it is (for a LoRA
// adapter that only drops the weakest directions of ΔW' beyond rank r).
// The SVDs are float64 (HF's run in the weights' float32). It lives here,
// not in package analysis, because the trainer applies it before
// evaluating, and analysis's importers include train's.
func MitigateIntruders(ctx context.Context, w0, w mat.Matrix, opt MitigationOptions) (*Mitigation, error) {
	r, c := w.Dims()
	if br, bc := w0.Dims(); r != br || c != bc {
		return nil, fmt.Errorf("train: mitigate intruders: tuned %d×%d, base %d×%d", r, c, br, bc)
	}
	if math.IsNaN(opt.Lambda) || opt.Lambda < 0 {
		return nil, fmt.Errorf("train: mitigate intruders: lambda %v, want ≥ 0", opt.Lambda)
	}
	for _, m := range []mat.Matrix{w0, w} {
		for i := range r {
			for j := range c {
				if v := m.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, fmt.Errorf("train: mitigate intruders: non-finite weight %v at (%d, %d)", v, i, j)
				}
			}
		}
	}
	eps, k := opt.Eps, opt.K
	if eps == 0 {
		eps = 0.5
	}
	if k == 0 {
		k = 10
	}
	k = min(k, r, c)
	out := mat.DenseCopyOf(w)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var svd0, svd mat.SVD
	if !svd0.Factorize(w0, mat.SVDThin) || !svd.Factorize(w, mat.SVDThin) {
		return nil, errors.New("train: mitigate intruders: SVD did not converge")
	}
	var u0 mat.Dense
	svd0.UTo(&u0)
	sig := svd.Values(nil)
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	var p mat.Dense // U0ᵀ·U[:, :k]
	p.Mul(u0.T(), u.Slice(0, r, 0, k))
	res := &Mitigation{W: out}
	for j := range k {
		best := 0.0
		for i := range p.RawMatrix().Rows {
			best = max(best, math.Abs(p.At(i, j)))
		}
		if best < eps {
			res.Intruders = append(res.Intruders, j)
		}
	}
	if opt.Lambda == 1 {
		return res, nil
	}
	for _, j := range res.Intruders {
		f := (opt.Lambda - 1) * sig[j]
		for a := range r {
			ua := f * u.At(a, j)
			row := out.RawRowView(a)
			for b := range c {
				row[b] += ua * v.At(b, j)
			}
		}
	}
	return res, nil
}
