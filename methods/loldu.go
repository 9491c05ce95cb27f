package methods

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// LoLDU is low-rank adaptation via the lower-diag-upper decomposition (Shi
// et al. 2024, arXiv 2410.13618), as the authors' code (SKDDJ/LoLDU,
// minloldu/loldu.py) builds it: the LU decomposition with partial pivoting
// W0 = P·L·U (torch.linalg.lu; L Out×k unit lower triangular, U k×In,
// k = min(Out, In)), D = diag(U), U ← D⁻¹·U (unit upper); the first r
// columns of L, entries of D and rows of U in elimination order (not the
// r largest |D|) give
//
//	W = W_res + σ·P·L_r·diag(z)·U_r,  W_res = W0 − σ₀·P·L_r·diag(D_r)·U_r,
//
// with P, L_r, U_r frozen, z ∈ R^r initialised to D_r (the code's default
// init_method "lu") and the scalar σ initialised to α/r (the code's
// scaling_factor = lora_alpha/rank; from_linear's lora_alpha is 1). The
// code declares σ an nn.Parameter but its get_loldu_params collects only
// vector_z (σ in its name filter is commented out); the paper trains the
// diagonal and a scaling factor. train_scale chooses: true (default) trains
// σ too, r+1 numbers a layer; false freezes it at σ₀, r numbers.
//
// As PiSSA here keeps its frozen initial factors instead of overwriting
// W0, the adapter keeps W0 and applies the same function as
//
//	y = x·W0ᵀ + b + ((x·U_rᵀ) ⊙ (σ·z − σ₀·D_r))·(P·L_r)ᵀ,
//
// exactly the base model at step 0 (σ·z and σ₀·D_r are the same float32
// products). The decomposition runs in float64 (the code's in float32).
// Dropout is left out: the code's lora_dropout is built but never applied.
type LoLDU struct {
	PL    *nn.Tensor // frozen P·L_r (Out×r)
	U     *nn.Tensor // frozen unit-upper U_r (r×In)
	C0    *nn.Tensor // frozen σ₀·D_r (1×r)
	Z     *nn.Tensor // trainable z (1×r), init D_r
	Sigma *nn.Tensor // σ (1×1): trainable with train_scale, else frozen at σ₀
	Rank  int
}

// coef returns σ·z − σ₀·D_r (1×r) in g.
func (m *LoLDU) coef(g *nn.Graph) *nn.Tensor { return g.Sub(g.MulCol(m.Z, m.Sigma), m.C0) }

// Forward computes x·W0ᵀ + b + ((x·U_rᵀ) ⊙ (σ·z − σ₀·D_r))·(P·L_r)ᵀ.
func (m *LoLDU) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	h := g.MulRow(g.MatMul(x, m.U, false, true), m.coef(g))
	return g.Add(l.Base(g, x), g.MatMul(h, m.PL, false, true))
}

// Params returns z and, with train_scale, σ; both with weight decay.
func (m *LoLDU) Params() []nn.ParamRef {
	ps := []nn.ParamRef{{Name: m.Z.Name, T: m.Z, LRMul: 1, Decay: true}}
	if m.Sigma.RequiresGrad() {
		ps = append(ps, nn.ParamRef{Name: m.Sigma.Name, T: m.Sigma, LRMul: 1, Decay: true})
	}
	return ps
}

// Merged returns W0 + P·L_r·diag(σ·z − σ₀·D_r)·U_r.
func (m *LoLDU) Merged(l *nn.Linear) []float32 {
	return mergedWeight(func(g *nn.Graph, l *nn.Linear) *nn.Tensor {
		return plusDelta(g, l, g.MatMul(g.MulRow(m.PL, m.coef(g)), m.U, false, false))
	}, l)
}

// luPivot is the LU decomposition with partial pivoting of a rows×cols
// matrix, LAPACK getrf's algorithm (torch.linalg.lu): at elimination step j
// the row of largest |a_ij|, i ≥ j (the first on a tie), is swapped in.
// It returns perm with w[perm[i]] = (L·U)[i] (P = the permutation taking
// row i to row perm[i]), L (rows×k, unit lower triangular) and U (k×cols,
// upper triangular), k = min(rows, cols), row-major in float64.
func luPivot(w []float32, rows, cols int) (perm []int, lo, up []float64) {
	a := make([]float64, len(w))
	for i, v := range w {
		a[i] = float64(v)
	}
	perm = make([]int, rows)
	for i := range perm {
		perm[i] = i
	}
	k := min(rows, cols)
	for j := range k {
		p, big := j, math.Abs(a[j*cols+j])
		for i := j + 1; i < rows; i++ {
			if v := math.Abs(a[i*cols+j]); v > big {
				p, big = i, v
			}
		}
		if p != j {
			ri, rp := a[j*cols:(j+1)*cols], a[p*cols:(p+1)*cols]
			for c := range ri {
				ri[c], rp[c] = rp[c], ri[c]
			}
			perm[j], perm[p] = perm[p], perm[j]
		}
		piv := a[j*cols+j]
		if piv == 0 {
			continue // the column is zero below the diagonal: L's entries stay 0
		}
		for i := j + 1; i < rows; i++ {
			f := a[i*cols+j] / piv
			a[i*cols+j] = f
			if f == 0 {
				continue
			}
			ri, rj := a[i*cols:(i+1)*cols], a[j*cols:(j+1)*cols]
			for c := j + 1; c < cols; c++ {
				ri[c] -= f * rj[c]
			}
		}
	}
	lo, up = make([]float64, rows*k), make([]float64, k*cols)
	for i := range rows {
		for j := range min(i, k) {
			lo[i*k+j] = a[i*cols+j]
		}
		if i < k {
			lo[i*k+i] = 1
			copy(up[i*cols+i:(i+1)*cols], a[i*cols+i:(i+1)*cols])
		}
	}
	return perm, lo, up
}

type lolduMethod struct{}

func (lolduMethod) Info() Info {
	return Info{
		Name: "loldu", Family: "svd-init", HasRank: true,
		RankMeans: "number r of LDU components (first r pivots) whose diagonal trains",
		Paper: Paper{Title: "LoLDU: Low-Rank Adaptation via Lower-Diag-Upper Decomposition for Parameter-Efficient Fine-Tuning",
			Authors: "Shi et al.", Year: 2024, ArXiv: "2410.13618"},
		Summary: "W = W_res + σ·P·L_r·diag(z)·U_r from the pivoted LDU of W0; only z (init D_r) and the scalar σ train",
		Options: []Option{
			intOpt("rank", 8, 1, "number r of LDU components: the first r pivots of the LU decomposition"),
			floatOpt("alpha", 1, fptr(0), nil, "σ starts at α/r (the code's lora_alpha, 1 in from_linear)"),
			boolOpt("train_scale", true, "train the scalar σ (the paper; the code's get_loldu_params trains z only)"),
		},
		AltOptions:    map[string]any{"rank": 4, "alpha": 0.5, "train_scale": false},
		ParamsFormula: "Σ (r + 1), or Σ r without train_scale",
	}
}

func (lolduMethod) Attach(layers []*nn.Linear, o Options, _ *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	sigma0 := float32(o.Float("alpha") / float64(r))
	if sigma0 == 0 {
		return nil, optionError("loldu", "alpha", "σ₀ = α/r = 0: the adapter could not move")
	}
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		perm, lo, up := luPivot(l.Weight.Data, l.Out, l.In)
		k := min(l.Out, l.In)
		m := &LoLDU{PL: nn.New(l.Out, r), U: nn.New(r, l.In), C0: nn.New(1, r),
			Z: nn.Param(l.Name+".loldu_z", 1, r), Sigma: nn.Param(l.Name+".loldu_sigma", 1, 1), Rank: r}
		m.PL.Name, m.U.Name, m.C0.Name = l.Name+".loldu_PL", l.Name+".loldu_U", l.Name+".loldu_C0"
		m.Sigma.Data[0] = sigma0
		if !o.Bool("train_scale") {
			m.Sigma.SetRequiresGrad(false)
		}
		for p := range r {
			d := up[p*l.In+p]
			if d == 0 {
				return nil, fmt.Errorf("methods: loldu: %s: pivot %d of the LU decomposition is 0 (W0 has rank < %d)", l.Name, p, r)
			}
			m.Z.Data[p] = float32(d)
			m.C0.Data[p] = sigma0 * m.Z.Data[p]
			for j := range l.In {
				m.U.Data[p*l.In+j] = float32(up[p*l.In+j] / d)
			}
			for i := range l.Out { // (P·L)[perm[i]] = L[i]
				m.PL.Data[perm[i]*r+p] = float32(lo[i*k+p])
			}
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return at, nil
}

func (lolduMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	per := int64(o.Int("rank"))
	if o.Bool("train_scale") {
		per++
	}
	return int64(len(layers)) * per
}

func init() { Register("loldu", lolduMethod{}) }
