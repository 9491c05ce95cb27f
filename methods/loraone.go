package methods

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// LoRA-One (Zhang, Liu and Chen 2025) is LoRA, ΔW = s·B·A with s = α/√r
// (rsLoRA, as the authors run it), initialised by one spectral step of
// full fine-tuning: with G = dL/dW0 estimated over grad_batches batches
// and −G = U·S·Vᵀ,
//
//	B = U_r·√S_r / √(s₁·γ),  A = √S_r·V_rᵀ / √(s₁·γ)
//
// (s₁ the top singular value, γ = stable_gamma), so s·B·A is s/(s₁γ) times
// the best rank-r approximation of −G. This follows the authors' code
// (YuanheZ/LoRA-One, run_exp.py, direction "LoRA-One", scale "stable"); the
// README's formula writes Diag(S_r) without the square root and without
// s₁. The authors do not reset W0, so the step-0 model is the base plus
// that step (Info.RandomInit); residual = true freezes W0 − s·B0·A0
// instead, LoRA-GA's way, and starts at the base. Scale "unit" keeps
// U_r√S_r/√s₁ and √S_rV_rᵀ/√s₁, "gd" divides both by s (the authors'
// other options). The preconditioned optimiser of the paper is not in the
// authors' released code (its README: "under revision") and not here:
// LoRA-One trains with the trial's optimiser.
type loraOne struct {
	*loraAttachment
	o Options
}

// BeforeTraining estimates the gradients and re-initialises every adapter.
func (at *loraOne) BeforeTraining(est GradEstimator) error {
	grads, err := est(at.layers, at.o.Int("grad_batches"))
	if err != nil {
		return fmt.Errorf("methods: lora-one: %w", err)
	}
	for k, l := range at.layers {
		a := at.adapters[k]
		neg := make([]float32, len(grads[k]))
		for i, g := range grads[k] {
			neg[i] = -g
		}
		u, s, v, err := svd(neg, l.Out, l.In)
		if err != nil {
			return fmt.Errorf("methods: lora-one: %s: %w", l.Name, err)
		}
		if !(s[0] > 0) {
			return fmt.Errorf("methods: lora-one: %s: the gradient estimate is zero", l.Name)
		}
		c := 1 / math.Sqrt(s[0])
		switch at.o.String("scale") {
		case "stable":
			c /= math.Sqrt(at.o.Float("stable_gamma"))
		case "gd":
			c /= float64(a.Scale)
		}
		r := a.Rank
		for p := range r {
			root := c * math.Sqrt(s[p])
			for j := range l.In {
				a.A.Data[p*l.In+j] = float32(root * v.At(j, p))
			}
			for i := range l.Out {
				a.B.Data[i*r+p] = float32(root * u.At(i, p))
			}
		}
		if at.o.Bool("residual") {
			a.setResidual(l)
		}
	}
	return nil
}

type loraOneMethod struct{ lowRank }

// Attach gives every layer a plain LoRA adapter (A Kaiming-uniform, B = 0)
// until BeforeTraining re-initialises it.
func (m *loraOneMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	at := plainLoRAs(layers, o, rng)
	for _, a := range at.adapters {
		a.Scale = loraOneScale(o)
	}
	return &loraOne{loraAttachment: at, o: o}, nil
}

// loraOneScale is α/√r (use_rslora) or α/r.
func loraOneScale(o Options) float32 {
	r := float64(o.Int("rank"))
	if o.Bool("use_rslora") {
		return float32(o.Float("alpha") / math.Sqrt(r))
	}
	return float32(o.Float("alpha") / r)
}

func init() {
	opts := []Option{
		intOpt("rank", 8, 1, "adapter rank r"),
		floatOpt("alpha", 16, fptr(0), nil, "scaling numerator α; a number or a multiple of the rank (\"2r\")"),
		{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
		boolOpt("use_rslora", true, "s = α/√r (the authors' runs) instead of α/r"),
		stringOpt("scale", "stable", []string{"stable", "unit", "gd"}, "extra factor on A and B: 1/√γ, 1, or 1/s"),
		floatOpt("stable_gamma", 128, fptr(1e-12), nil, "γ of the stable scale"),
		intOpt("grad_batches", 8, 1, "training batches averaged for the gradient estimate"),
		boolOpt("residual", false, "freeze W0 − s·B0·A0 so that step 0 is the base model (the authors keep W0)"),
	}
	Register("lora-one", &loraOneMethod{lowRank{
		info: Info{
			Name: "lora-one", Family: "gradient-init", HasRank: true,
			Paper:   Paper{Title: "LoRA-One: One-Step Full Gradient Could Suffice for Fine-Tuning Large Language Models, Provably and Efficiently", Authors: "Zhang, Liu and Chen", Year: 2025, ArXiv: "2502.01235"},
			Summary: "B = U_r√S_r/√(s₁γ), A = √S_rV_rᵀ/√(s₁γ) from the SVD of −∇W0 L; W0 kept, so training starts one spectral gradient step from the base",
			// the authors' runs: r = 8, α = 16 with rsLoRA, γ = 128, 8 batches
			Options:         opts,
			AltOptions:      map[string]any{"rank": 4, "use_rslora": false, "scale": "gd"},
			RandomInit:      "ΔW = s·B0·A0 = s/(s₁γ)·(−G)_r at step 0: the authors do not subtract it from W0",
			IdentityOptions: map[string]any{"residual": true},
			ParamsFormula:   "Σ r·(in+out)",
		},
		count: loraParams,
	}})
}
