package methods

import (
	"fmt"

	"peftbench/nn"
)

// SVFit trains the top-r singular values of W0 (Sun et al. 2024,
// arXiv 2409.05926): with W0 = U·Σ·Vᵀ,
//
//	W = W_e + U_r·diag(σ')·V_rᵀ,  W_e = W0 − U_r·Σ_r·V_rᵀ (frozen),
//
// U_r, V_r frozen and only σ' ∈ R^r trainable, initialised σ' = Σ_r, so the
// model starts at the base. As PiSSA here keeps its frozen initial factors
// instead of overwriting W0 with the residual, the adapter keeps W0 and
// applies the same function as
//
//	y = x·W0ᵀ + b + ((x·V_r) ⊙ (σ' − Σ_r))·U_rᵀ,
//
// exactly the base model at step 0 (σ' − Σ_r = 0 in float32) instead of off
// by the rounding of a float32 W_e. The SVD is svd's (float64, its sign
// rule; SVFit is invariant under the joint sign flips). No scaling factor
// and no dropout: the paper has neither.
type SVFit struct {
	U, Vt *nn.Tensor // frozen U_r (Out×r), V_rᵀ (r×In)
	S0    *nn.Tensor // frozen Σ_r (1×r)
	Sigma *nn.Tensor // trainable σ' (1×r), init Σ_r
	Rank  int
}

// coef returns σ' − Σ_r (1×r) in g.
func (m *SVFit) coef(g *nn.Graph) *nn.Tensor { return g.Sub(m.Sigma, m.S0) }

// Forward computes x·W0ᵀ + b + ((x·V_r) ⊙ (σ' − Σ_r))·U_rᵀ.
func (m *SVFit) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	h := g.MulRow(g.MatMul(x, m.Vt, false, true), m.coef(g))
	return g.Add(l.Base(g, x), g.MatMul(h, m.U, false, true))
}

// Params returns σ', with weight decay as a torch AdamW over the trainable
// tensors applies it.
func (m *SVFit) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: m.Sigma.Name, T: m.Sigma, LRMul: 1, Decay: true}}
}

// Merged returns W0 + U_r·diag(σ' − Σ_r)·V_rᵀ (= W_e + U_r·diag(σ')·V_rᵀ).
func (m *SVFit) Merged(l *nn.Linear) []float32 {
	return mergedWeight(func(g *nn.Graph, l *nn.Linear) *nn.Tensor {
		return plusDelta(g, l, g.MatMul(g.MulRow(m.U, m.coef(g)), m.Vt, false, false))
	}, l)
}

// topSVD returns the frozen top-r factors of W0: U_r (Out×r), V_rᵀ (r×In)
// and Σ_r (1×r), as float32 tensors named after l.
func topSVD(l *nn.Linear, r int, prefix string) (u, vt, s *nn.Tensor, err error) {
	uu, ss, vv, err := svd(l.Weight.Data, l.Out, l.In)
	if err != nil {
		return nil, nil, nil, err
	}
	u, vt, s = nn.New(l.Out, r), nn.New(r, l.In), nn.New(1, r)
	u.Name, vt.Name, s.Name = l.Name+"."+prefix+"_U", l.Name+"."+prefix+"_Vt", l.Name+"."+prefix+"_S0"
	for i := range l.Out {
		for p := range r {
			u.Data[i*r+p] = float32(uu.At(i, p))
		}
	}
	for p := range r {
		for j := range l.In {
			vt.Data[p*l.In+j] = float32(vv.At(j, p))
		}
		s.Data[p] = float32(ss[p])
	}
	return u, vt, s, nil
}

type svfitMethod struct{}

func (svfitMethod) Info() Info {
	return Info{
		Name: "svfit", Family: "svd-init", HasRank: true,
		RankMeans: "number r of top singular values trained",
		Paper: Paper{Title: "SVFit: Parameter-Efficient Fine-Tuning of Large Pre-Trained Models Using Singular Values",
			Authors: "Sun et al.", Year: 2024, ArXiv: "2409.05926"},
		Summary: "W = W_e + U_r·diag(σ')·V_rᵀ from the SVD of W0; only the top-r singular values σ' train, init Σ_r",
		Options: []Option{intOpt("rank", 8, 1, "number r of top singular values trained")},
		// SVFit has no option besides r; the second set runs another rank.
		AltOptions:    map[string]any{"rank": 2},
		ParamsFormula: "Σ r",
	}
}

func (svfitMethod) Attach(layers []*nn.Linear, o Options, _ *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		u, vt, s, err := topSVD(l, r, "svfit")
		if err != nil {
			return nil, fmt.Errorf("methods: svfit: %s: %w", l.Name, err)
		}
		sigma := nn.Param(l.Name+".svfit_sigma", 1, r)
		copy(sigma.Data, s.Data)
		return &SVFit{U: u, Vt: vt, S0: s, Sigma: sigma, Rank: r}, nil
	})
	if err != nil {
		return nil, err
	}
	return at, nil
}

func (svfitMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	return int64(len(layers)) * int64(o.Int("rank"))
}

func init() { Register("svfit", svfitMethod{}) }
