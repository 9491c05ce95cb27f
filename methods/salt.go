package methods

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// SALT is singular value adaptation with low-rank transformation (Elsayed
// et al. 2025, arXiv 2503.16055) as the authors' code (BioMedIA-MBZUAI/SALT,
// prompt_adapted_SAM2/modeling/Adapters/SALT.py, SALTLinear) computes it:
// with the thin SVD W0 = U·diag(S)·Vᵀ, k = min(Out, In), and
//
//	S' = diag(S) with the top-r diagonal replaced by α ⊙ S_r + β and the
//	     trailing (k−r)×(k−r) block increased by X·Y,
//	W' = U·ReLU(S')·Vᵀ                  (ReLU element-wise on the k×k S'),
//
// α, β ∈ R^r (scale and shift of the top singular values, init 1 and 0),
// X ∈ R^{(k−r)×r_lora} Kaiming-uniform (the code's kaiming_uniform_ with
// nonlinearity "relu": bound √6/√r_lora, its a ignored) and Y ∈
// R^{r_lora×(k−r)} zero, so X·Y = 0 and W' = W0 at step 0.
//
// The code's ReLU keeps the singular values non-negative, but it acts on
// every entry of the k×k S', so an off-diagonal entry of X·Y passes only
// where positive, and none gets a gradient at exactly 0 (torch's ReLU): at
// step 0, X·Y = 0, the code trains Y through the diagonal of X·Y only. The
// loss is then not differentiable in X, Y wherever an off-diagonal entry
// crosses 0, which a finite-difference check of the gradients trips over.
// relu chooses: "diagonal" (default) applies ReLU to the singular values
// only, the diagonal of S' (the paper's stated purpose), and lets X·Y's
// off-diagonal entries through; "elementwise" is the code's F.relu on the
// whole S' (cross-checked against PyTorch; the conformance suite's
// gradient check cannot run it); "none" drops it, W' = U·S'·Vᵀ. The code's
// regularisation loss ‖scale-shift term‖ + ‖X·Y‖ is weighted by
// reg_multiplier, 0 in its config: left out.
//
// The adapter keeps W0 and applies the same function as W0 + ΔW,
//
//	ΔW = U_r·diag(ReLU(α⊙S_r + β) − S_r)·V_rᵀ + U_⊥·(S'_⊥ − diag(S_⊥))·V_⊥ᵀ,
//
// S'_⊥ the trailing block after the ReLU, through the thin factors: for
// "diagonal" and "none" S'_⊥ − diag(S_⊥) = X·Y + diag(c) with c the
// diagonal's ReLU correction, so no k×k matrix is formed; "elementwise"
// forms the (k−r)×(k−r) block. The model is exactly the base at step 0,
// rather than U·S·Vᵀ's float32 reconstruction of W0. The SVD is svd's, in
// float64, with its sign rule (X·Y mixes singular directions, so the signs
// matter and a cross-check uses the same rule).
type SALT struct {
	U, Vt     *nn.Tensor // frozen top U_r (Out×r), V_rᵀ (r×In)
	S         *nn.Tensor // frozen S_r (1×r)
	UR, VRt   *nn.Tensor // frozen trailing U_⊥ (Out×(k−r)), V_⊥ᵀ ((k−r)×In); nil when r = k
	DR        *nn.Tensor // frozen diag(S_⊥) ((k−r)×(k−r)), for "elementwise" only
	Alpha     *nn.Tensor // trainable scale α (1×r), init 1
	Beta      *nn.Tensor // trainable shift β (1×r), init 0
	X, Y      *nn.Tensor // trainable (k−r)×r_lora, r_lora×(k−r)
	SR        *nn.Tensor // frozen S_⊥ (1×(k−r))
	Rank, Low int        // r, r_lora
	ReLU      string     // "diagonal", "elementwise" or "none"
}

// top returns ReLU(α⊙S_r + β) − S_r (1×r), without ReLU for "none".
func (m *SALT) top(g *nn.Graph) *nn.Tensor {
	s := g.Add(g.Mul(m.Alpha, m.S), m.Beta)
	if m.ReLU != "none" {
		s = g.ReLU(s)
	}
	return g.Sub(s, m.S)
}

// rest returns ReLU(diag(S_⊥) + X·Y) − diag(S_⊥) ((k−r)×(k−r)), for
// "elementwise".
func (m *SALT) rest(g *nn.Graph) *nn.Tensor {
	return g.Sub(g.ReLU(g.Add(m.DR, g.MatMul(m.X, m.Y, false, false))), m.DR)
}

// diagFix returns c = ReLU(S_⊥ + diag(X·Y)) − S_⊥ − diag(X·Y) (1×(k−r)), for
// "diagonal": S'_⊥ − diag(S_⊥) = X·Y + diag(c).
func (m *SALT) diagFix(g *nn.Graph) *nn.Tensor {
	d := g.Reshape(g.SumRows(g.Mul(m.X, g.Transpose(m.Y))), m.SR.Shape...)
	s := g.Add(m.SR, d)
	return g.Sub(g.ReLU(s), s)
}

// Forward computes x·W0ᵀ + b + x·ΔWᵀ through the thin factors.
func (m *SALT) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	d := g.MatMul(g.MulRow(g.MatMul(x, m.Vt, false, true), m.top(g)), m.U, false, true)
	if m.UR != nil {
		h := g.MatMul(x, m.VRt, false, true) // x·V_⊥
		var t *nn.Tensor                     // h·(S'_⊥ − diag(S_⊥))ᵀ
		if m.ReLU == "elementwise" {
			t = g.MatMul(h, m.rest(g), false, true)
		} else {
			t = g.MatMul(g.MatMul(h, m.Y, false, true), m.X, false, true)
			if m.ReLU == "diagonal" {
				t = g.Add(t, g.MulRow(h, m.diagFix(g)))
			}
		}
		d = g.Add(d, g.MatMul(t, m.UR, false, true))
	}
	return g.Add(l.Base(g, x), d)
}

// Params returns α, β, X and Y (X and Y absent when r = k), all with
// weight decay (the code's AdamW, weight_decay 1e-2, over every trainable
// tensor).
func (m *SALT) Params() []nn.ParamRef {
	ps := []nn.ParamRef{
		{Name: m.Alpha.Name, T: m.Alpha, LRMul: 1, Decay: true},
		{Name: m.Beta.Name, T: m.Beta, LRMul: 1, Decay: true},
	}
	if m.X != nil {
		ps = append(ps, nn.ParamRef{Name: m.X.Name, T: m.X, LRMul: 1, Decay: true},
			nn.ParamRef{Name: m.Y.Name, T: m.Y, LRMul: 1, Decay: true})
	}
	return ps
}

// Merged returns W0 + ΔW.
func (m *SALT) Merged(l *nn.Linear) []float32 {
	return mergedWeight(func(g *nn.Graph, l *nn.Linear) *nn.Tensor {
		d := g.MatMul(g.MulRow(m.U, m.top(g)), m.Vt, false, false)
		if m.UR != nil {
			var t *nn.Tensor // U_⊥·(S'_⊥ − diag(S_⊥))
			if m.ReLU == "elementwise" {
				t = g.MatMul(m.UR, m.rest(g), false, false)
			} else {
				t = g.MatMul(g.MatMul(m.UR, m.X, false, false), m.Y, false, false)
				if m.ReLU == "diagonal" {
					t = g.Add(t, g.MulRow(m.UR, m.diagFix(g)))
				}
			}
			d = g.Add(d, g.MatMul(t, m.VRt, false, false))
		}
		return plusDelta(g, l, d)
	}, l)
}

type saltMethod struct{}

func (saltMethod) Info() Info {
	return Info{
		Name: "salt", Family: "svd-init", HasRank: true,
		RankMeans: "number r of top singular values scaled and shifted (the rest get a rank-lora_rank update)",
		Paper: Paper{Title: "SALT: Singular Value Adaptation with Low-Rank Transformation",
			Authors: "Elsayed et al.", Year: 2025, ArXiv: "2503.16055"},
		Summary: "W' = U·ReLU(S')·Vᵀ: top-r singular values α⊙S_r + β, the trailing block diag(S_⊥) + X·Y (rank lora_rank)",
		Options: []Option{
			intOpt("rank", 8, 1, "number r of top singular values with a trainable scale and shift"),
			intOpt("lora_rank", 8, 1, "rank of the X·Y update of the trailing (k−r)×(k−r) block (the code's r_lora)"),
			stringOpt("relu", "diagonal", []string{"diagonal", "elementwise", "none"},
				"ReLU on the modified singular values: the diagonal of S' (default), every entry of S' (the code's F.relu), or none"),
		},
		AltOptions:    map[string]any{"rank": 4, "lora_rank": 2, "relu": "none"},
		ParamsFormula: "Σ 2r + 2·lora_rank·(min(in, out) − r)",
	}
}

func (saltMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r, lr := o.Int("rank"), o.Int("lora_rank")
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		uu, ss, vv, err := svd(l.Weight.Data, l.Out, l.In)
		if err != nil {
			return nil, fmt.Errorf("methods: salt: %s: %w", l.Name, err)
		}
		k := len(ss)
		m := &SALT{Rank: r, Low: lr, ReLU: o.String("relu"),
			Alpha: nn.Param(l.Name+".salt_alpha", 1, r), Beta: nn.Param(l.Name+".salt_beta", 1, r)}
		for i := range m.Alpha.Data {
			m.Alpha.Data[i] = 1
		}
		cols := func(lo, hi int) (u, vt *nn.Tensor) {
			n := hi - lo
			u, vt = nn.New(l.Out, n), nn.New(n, l.In)
			for i := range l.Out {
				for p := range n {
					u.Data[i*n+p] = float32(uu.At(i, lo+p))
				}
			}
			for p := range n {
				for j := range l.In {
					vt.Data[p*l.In+j] = float32(vv.At(j, lo+p))
				}
			}
			return u, vt
		}
		m.U, m.Vt = cols(0, r)
		m.S = nn.New(1, r)
		for p := range r {
			m.S.Data[p] = float32(ss[p])
		}
		if n := k - r; n > 0 {
			m.UR, m.VRt = cols(r, k)
			m.SR = nn.New(1, n)
			for p := range n {
				m.SR.Data[p] = float32(ss[r+p])
			}
			if m.ReLU == "elementwise" {
				m.DR = nn.New(n, n)
				for p := range n {
					m.DR.Data[p*n+p] = m.SR.Data[p]
				}
			}
			m.X, m.Y = nn.Param(l.Name+".salt_X", n, lr), nn.Param(l.Name+".salt_Y", lr, n)
			b := float32(math.Sqrt(6 / float64(lr))) // kaiming_uniform_, relu gain √2, fan-in r_lora
			rng.FillUniform(m.X, -b, b)
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return at, nil
}

func (saltMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	r, lr := int64(o.Int("rank")), int64(o.Int("lora_rank"))
	var n int64
	for _, l := range layers {
		n += 2*r + 2*lr*(int64(min(l.In, l.Out))-r)
	}
	return n
}

func init() { Register("salt", saltMethod{}) }
