package methods

import "peftbench/nn"

// Fira (Chen et al. 2024, "Can We Achieve Full-rank Training of LLMs Under
// Low-rank Constraint?") is GaLore plus the gradient GaLore drops, as the
// authors' optimizer_torch/fira_adamw.py computes it: with GaLore's P, R
// and ψ = m̂/(√v̂ + ε) (see galoreMethod), each targeted weight steps
//
//	S = φ ⊙ (G − scale·back(R)),  φ = ‖ψ‖/(‖R‖ + 1e-8) per column of R
//	    (left, R r×n: scales W's columns) or per row (right, R m×r: rows)
//	S ← S/ℓ,  ℓ = max(‖S‖/(‖S_prev‖ + 1e-8), γ)/γ,  γ = 1.01  (from step 2)
//	W ← W·(1 − lr·wd) − lr·(scale·back(ψ) + S)
//
// with back(X) = P·X (left) or X·P (right): the Adam-normalised low-rank
// update plus the residual, full-rank gradient scaled by the low-rank
// optimiser's per-column norm ratio (norm-based scaling) and its norm
// growth capped at γ per step (norm-growth limiter). The residual subtracts
// scale·P·R, as fira_adamw does (its project_back multiplies by alpha); the
// paper writes G − P·R, which is the same at scale 1. The optimiser state
// is GaLore's plus one float (‖S_prev‖). Biases take the trial's AdamW; the
// Adam arithmetic and weight-decay order are torch.optim.AdamW's, as for
// GaLore (fira_adamw, like galore_torch, adds ε before bias correction and
// decays after the update).
type firaMethod struct{}

func (firaMethod) Info() Info {
	return Info{
		Name: "fira", Family: "optimizer", HasRank: true, RankAboveMin: true,
		RankMeans: "rank r of the gradient projection (r above min(out, in) is min(out, in))",
		Paper: Paper{Title: "Fira: Can We Achieve Full-rank Training of LLMs Under Low-rank Constraint?",
			Authors: "Chen et al.", Year: 2024, ArXiv: "2410.01623"},
		Summary: "GaLore plus the residual full-rank gradient, scaled by the low-rank Adam's norm ratio and norm-growth limited",
		Options: []Option{
			intOpt("rank", 128, 1, "rank r of the projection P (Fira README: 128)"),
			intOpt("update_proj_gap", 200, 1, "steps T between SVDs of the gradient (Fira README: 200)"),
			floatOpt("scale", 0.25, fptr(0), nil, "scale α of the projected-back update, fira_adamw's alpha (Fira README: 0.25; the fira package's divide_params: 1)"),
		},
		AltOptions:    map[string]any{"rank": 4, "update_proj_gap": 2, "scale": 1.0},
		ParamsFormula: "Σ out·in (+ out with a bias)",
	}
}

func (firaMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	return attachProjected("fira", layers, o)
}

func (firaMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	return fullMethod{}.TrainableParams(layers, o)
}

func init() { Register("fira", firaMethod{}) }
