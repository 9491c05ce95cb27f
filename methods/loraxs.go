package methods

import (
	"peftbench/nn"
)

// LoRAXS is LoRA-XS: ΔW = s·U_r·R·(Σ_r·V_rᵀ), where U_r, Σ_r, V_r are the
// top-r singular triplets of W0 (frozen, as P = U_r and Q = Σ_r·V_rᵀ) and
// only the r×r matrix R trains, initialised N(0, 1e-5²) (init "zero" starts
// it at exactly 0 instead). This follows the authors' code
// (MohammadrezaBanaei/LoRA-XS, utils/initialization_utils.py): it takes the
// SVD of W0ᵀ and folds Σ into the encoder, so lora_A = Σ_r·V_rᵀ and
// lora_B = U_r; the paper's text writes ΔW = U_r·Σ_r·R·V_rᵀ, with Σ on the
// other side of R, which trains differently (R's gradient is scaled by Σ
// on the other side). The SVD's signs follow svd's convention.
type LoRAXS struct {
	P, Q    *nn.Tensor // frozen: U_r (Out×r), Σ_r·V_rᵀ (r×In)
	R       *nn.Tensor // trainable r×r
	Rank    int
	Scale   float32
	Dropout float32

	rng *nn.RNG
}

// Forward computes x·W0ᵀ + b + s·((drop(x)·Qᵀ)·Rᵀ)·Pᵀ.
func (m *LoRAXS) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	u := g.MatMul(g.Dropout(x, m.Dropout, m.rng), m.Q, false, true)
	u = g.MatMul(u, m.R, false, true)
	return g.Add(l.Base(g, x), g.Scale(g.MatMul(u, m.P, false, true), m.Scale))
}

// Params returns R.
func (m *LoRAXS) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: m.R.Name, T: m.R, LRMul: 1, Decay: true}}
}

// Merged returns W0 + s·P·R·Q.
func (m *LoRAXS) Merged(l *nn.Linear) []float32 {
	r := m.Rank
	pr := make([]float32, l.Out*r) // P·R
	for i := range l.Out {
		for q := range r {
			var acc float64
			for p := range r {
				acc += float64(m.P.Data[i*r+p]) * float64(m.R.Data[p*r+q])
			}
			pr[i*r+q] = float32(acc)
		}
	}
	w := append([]float32(nil), l.Weight.Data...)
	addLowRank(w, pr, m.Q.Data, l.Out, r, l.In, float64(m.Scale))
	return w
}

type loraXSMethod struct{}

func (loraXSMethod) Info() Info {
	return Info{
		Name: "lora-xs", Family: "svd-init", HasRank: true,
		Paper:   Paper{Title: "LoRA-XS: Low-Rank Adaptation with Extremely Small Number of Parameters", Authors: "Bałazy et al.", Year: 2024, ArXiv: "2405.17604"},
		Summary: "ΔW = s·U_r·R·Σ_rV_rᵀ from the SVD of W0 (the authors' code); only R (r×r) trains",
		// init "gaussian": R ~ N(0, 1e-5²) (the paper's); "zero": R = 0.
		AltOptions:    map[string]any{"rank": 4, "init": "zero"},
		Options:       loraOptions(8, 8, "gaussian", "zero"),
		ParamsFormula: "Σ r²",
		// R ~ N(0, 1e-5²) moves outputs by O(1e-5) at step 0 (5e-6 on the
		// reference MLP, 2e-5 on the reference transformer).
		InitDeviation: 1e-4,
	}
}

func (loraXSMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	at := &loraXSAttachment{layers: layers}
	for _, l := range layers {
		u, s, v, err := svd(l.Weight.Data, l.Out, l.In)
		if err != nil {
			return nil, err
		}
		m := &LoRAXS{P: nn.New(l.Out, r), Q: nn.New(r, l.In), R: nn.Param(l.Name+".lora_xs_R", r, r),
			Rank: r, Scale: float32(o.Float("alpha") / float64(r)), Dropout: float32(o.Float("dropout"))}
		m.P.Name, m.Q.Name = l.Name+".lora_xs_P", l.Name+".lora_xs_Q"
		for i := range l.Out {
			for p := range r {
				m.P.Data[i*r+p] = float32(u.At(i, p))
			}
		}
		for p := range r {
			for j := range l.In {
				m.Q.Data[p*l.In+j] = float32(s[p] * v.At(j, p))
			}
		}
		if o.String("init") == "gaussian" {
			rng.FillNormal(m.R, 0, 1e-5)
		}
		l.Adapter = m
		at.adapters = append(at.adapters, m)
	}
	return at, nil
}

func (loraXSMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	r := int64(o.Int("rank"))
	return int64(len(layers)) * r * r
}

type loraXSAttachment struct {
	layers   []*nn.Linear
	adapters []*LoRAXS
}

func (at *loraXSAttachment) Layers() []*nn.Linear { return at.layers }

func (at *loraXSAttachment) Params() []nn.ParamRef {
	var ps []nn.ParamRef
	for _, m := range at.adapters {
		ps = append(ps, m.Params()...)
	}
	return ps
}

func (at *loraXSAttachment) SetTraining(rng *nn.RNG) {
	for _, m := range at.adapters {
		m.rng = childRNG(rng, m.R.Name)
	}
}

func init() { Register("lora-xs", loraXSMethod{}) }
