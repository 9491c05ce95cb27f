package methods

import (
	"fmt"

	"peftbench/nn"
)

// LoRASB is LoRA-SB (Ponkshe, Singhal et al. 2024): LoRA-XS's architecture,
// ΔW = s·B·R·A with B (Out×r) and A (r×In) frozen and only the r×r R
// trained, initialised from an approximation of full fine-tuning's first
// update. Following the authors' code (RaghavSinghal10/lora-sb, now
// CERT-Lab/lora-sb: utils/gradient_utils.py and initialization_utils.py):
// with G the gradient estimate over grad_batches batches, the update is
// ΔW₁ = −η·sign(G) (Adam's first step; update "grad" takes −η·G, SGD's),
// η = init_lr; ΔW₁ = U·S·Vᵀ gives B = U_r, A = V_rᵀ and R = diag(S_r), and
// s = 1 (the authors set α = r: "no α tuning"; the paper's 1/ρ scaling of
// R is η here). The authors do not subtract s·B·R·A from W0, so the
// step-0 model is the base plus the rank-r part of that update
// (Info.RandomInit); residual = true freezes R0 and computes
// s·B·(R − R0)·A, so step 0 is the base.
//
// The authors' code takes a randomised SVD (torch.svd_lowrank, q = r) in
// bfloat16; here it is exact, in float64, signed by svd's rule.
type LoRASB struct {
	B, A    *nn.Tensor // frozen: U_r (Out×r), V_rᵀ (r×In)
	R       *nn.Tensor // trainable r×r
	R0      *nn.Tensor // frozen initial R (residual), or nil
	Rank    int
	Scale   float32
	Dropout float32

	rng *nn.RNG
}

// Forward computes x·W0ᵀ + b + s·((drop(x)·Aᵀ)·(R − R0)ᵀ)·Bᵀ.
func (m *LoRASB) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	u := g.MatMul(g.Dropout(x, m.Dropout, m.rng), m.A, false, true)
	d := g.MatMul(u, m.R, false, true)
	if m.R0 != nil {
		d = g.Sub(d, g.MatMul(u, m.R0, false, true))
	}
	return g.Add(l.Base(g, x), g.Scale(g.MatMul(d, m.B, false, true), m.Scale))
}

// Params returns R.
func (m *LoRASB) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: m.R.Name, T: m.R, LRMul: 1, Decay: true}}
}

// Merged returns W0 + s·B·(R − R0)·A.
func (m *LoRASB) Merged(l *nn.Linear) []float32 {
	r := m.Rank
	br := make([]float32, l.Out*r) // B·(R − R0)
	for i := range l.Out {
		for q := range r {
			var acc float64
			for p := range r {
				rv := float64(m.R.Data[p*r+q])
				if m.R0 != nil {
					rv -= float64(m.R0.Data[p*r+q])
				}
				acc += float64(m.B.Data[i*r+p]) * rv
			}
			br[i*r+q] = float32(acc)
		}
	}
	w := append([]float32(nil), l.Weight.Data...)
	addLowRank(w, br, m.A.Data, l.Out, r, l.In, float64(m.Scale))
	return w
}

type loraSBMethod struct{}

func (loraSBMethod) Info() Info {
	return Info{
		Name: "lora-sb", Family: "gradient-init", HasRank: true,
		Paper:   Paper{Title: "Initialization using Update Approximation is a Silver Bullet for Extremely Efficient Low-Rank Fine-Tuning", Authors: "Ponkshe, Singhal et al.", Year: 2024, ArXiv: "2411.19557"},
		Summary: "LoRA-XS's B·R·A with B = U_r, A = V_rᵀ frozen and R = S_r from the SVD of the first update −η·sign(∇W0 L); only R (r×r) trains",
		Options: []Option{
			intOpt("rank", 8, 1, "adapter rank r"),
			{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
			stringOpt("update", "sign", []string{"sign", "grad"}, "first-update approximation: −η·sign(G) (Adam, the authors') or −η·G (SGD)"),
			floatOpt("init_lr", 1e-3, fptr(0), nil, "η of the first-update approximation"),
			intOpt("grad_batches", 8, 1, "training batches averaged for the gradient estimate"),
			boolOpt("residual", false, "train B·(R − R0)·A so that step 0 is the base model (the authors keep B·R0·A)"),
		},
		AltOptions:      map[string]any{"rank": 4, "update": "grad", "init_lr": 1e-1},
		RandomInit:      "ΔW = B·R0·A = the rank-r part of −η·sign(G) at step 0: the authors do not subtract it from W0",
		IdentityOptions: map[string]any{"residual": true},
		ParamsFormula:   "Σ r²",
	}
}

// Attach gives every layer a LoRA-SB adapter with B, A and R zero (the
// base model) until BeforeTraining initialises them.
func (loraSBMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	at := &loraSBAttachment{layers: layers, o: o}
	for _, l := range layers {
		m := &LoRASB{B: nn.New(l.Out, r), A: nn.New(r, l.In), R: nn.Param(l.Name+".lora_sb_R", r, r),
			Rank: r, Scale: 1, Dropout: float32(o.Float("dropout"))}
		m.B.Name, m.A.Name = l.Name+".lora_sb_B", l.Name+".lora_sb_A"
		l.Adapter = m
		at.adapters = append(at.adapters, m)
	}
	return at, nil
}

func (loraSBMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	r := int64(o.Int("rank"))
	return int64(len(layers)) * r * r
}

type loraSBAttachment struct {
	layers   []*nn.Linear
	adapters []*LoRASB
	o        Options
}

// BeforeTraining estimates the gradients and initialises B, R, A from the
// SVD of the approximate first update.
func (at *loraSBAttachment) BeforeTraining(est GradEstimator) error {
	grads, err := est(at.layers, at.o.Int("grad_batches"))
	if err != nil {
		return fmt.Errorf("methods: lora-sb: %w", err)
	}
	eta := at.o.Float("init_lr")
	for k, l := range at.layers {
		m := at.adapters[k]
		upd := make([]float32, len(grads[k]))
		for i, g := range grads[k] {
			if at.o.String("update") == "sign" {
				upd[i] = float32(-eta * sign(float64(g)))
			} else {
				upd[i] = float32(-eta * float64(g))
			}
		}
		u, s, v, err := svd(upd, l.Out, l.In)
		if err != nil {
			return fmt.Errorf("methods: lora-sb: %s: %w", l.Name, err)
		}
		r := m.Rank
		clear(m.R.Data)
		for p := range r {
			for i := range l.Out {
				m.B.Data[i*r+p] = float32(u.At(i, p))
			}
			for j := range l.In {
				m.A.Data[p*l.In+j] = float32(v.At(j, p))
			}
			m.R.Data[p*r+p] = float32(s[p])
		}
		if at.o.Bool("residual") {
			m.R0 = m.R.Clone()
			m.R0.Name = l.Name + ".lora_sb_R0"
			m.R0.SetRequiresGrad(false)
		}
	}
	return nil
}

// sign is torch.sign: −1, 0 or 1.
func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

func (at *loraSBAttachment) Layers() []*nn.Linear { return at.layers }

func (at *loraSBAttachment) Params() []nn.ParamRef {
	var ps []nn.ParamRef
	for _, m := range at.adapters {
		ps = append(ps, m.Params()...)
	}
	return ps
}

func (at *loraSBAttachment) SetTraining(rng *nn.RNG) {
	for _, m := range at.adapters {
		m.rng = childRNG(rng, m.R.Name)
	}
}

func init() {
	Register("lora-sb", loraSBMethod{})
}
