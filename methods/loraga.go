package methods

import (
	"fmt"
	"math"
)

// LoRA-GA initialises LoRA from the SVD of the full-weight gradient
// G = dL/dW0, estimated over a few batches before training (BeforeTraining),
// so that the first steps follow full fine-tuning's. With G = U·S·Vᵀ, the
// default direction "ArB2r" takes A = V[:, :r]ᵀ and B = U[:, r:2r]; the
// "stable" scale multiplies both by out^{1/4}/√γ (γ = 16), as in the
// authors' code (HF PEFT's summary in peft-facts.md puts S into B; we follow
// the paper's code), and the frozen residual becomes W0 − s·B·A. Until
// BeforeTraining runs the adapter is plain LoRA with ΔW = 0.
type loraGA struct {
	*loraAttachment
	o Options
}

// BeforeTraining estimates the gradients and re-initialises every adapter.
func (at *loraGA) BeforeTraining(est GradEstimator) error {
	grads, err := est(at.layers, at.o.Int("grad_batches"))
	if err != nil {
		return fmt.Errorf("methods: lora-ga: %w", err)
	}
	for k, l := range at.layers {
		a := at.adapters[k]
		u, _, v, err := svd(grads[k], l.Out, l.In)
		if err != nil {
			return fmt.Errorf("methods: lora-ga: %s: %w", l.Name, err)
		}
		r := a.Rank
		var ia, ib []int // singular-vector indices for A's rows and B's columns
		for p := range r {
			switch at.o.String("direction") {
			case "ArB2r":
				ia, ib = append(ia, p), append(ib, r+p)
			case "A2rBr":
				ia, ib = append(ia, r+p), append(ib, p)
			case "ArBr":
				ia, ib = append(ia, 2*p+1), append(ib, 2*p)
			}
		}
		c := 1.0
		switch at.o.String("scale") {
		case "stable":
			c = math.Pow(float64(l.Out), 0.25) / math.Sqrt(at.o.Float("stable_gamma"))
		case "gd":
			c = 1 / float64(a.Scale)
		}
		for p := range r {
			for j := range l.In {
				a.A.Data[p*l.In+j] = float32(c * v.At(j, ia[p]))
			}
			for i := range l.Out {
				a.B.Data[i*r+p] = float32(c * u.At(i, ib[p]))
			}
		}
		a.setResidual(l)
	}
	return nil
}

type loraGAMethod struct{ lowRank }

// CheckLayers needs 2r singular vectors per layer.
func (m *loraGAMethod) CheckLayers(o Options, layers []LayerShape) error {
	r := o.Int("rank")
	for _, l := range layers {
		if 2*r > min(l.Out, l.In) {
			return optionError("lora-ga", "rank",
				fmt.Sprintf("2·%d singular vectors needed but layer %s (%d×%d) has %d", r, l.Name, l.Out, l.In, min(l.Out, l.In)))
		}
	}
	return nil
}

func init() {
	opts := append(loraOptions(8, 16, "lora-ga"),
		stringOpt("direction", "ArB2r", []string{"ArB2r", "A2rBr", "ArBr"}, "which singular vectors of G form A and B"),
		stringOpt("scale", "stable", []string{"stable", "unit", "gd"}, "scaling of A and B: out^{1/4}/√γ, 1, or 1/s"),
		floatOpt("stable_gamma", 16, fptr(1e-12), nil, "γ of the stable scale"),
		intOpt("grad_batches", 8, 1, "training batches averaged for the gradient estimate"))
	Register("lora-ga", &loraGAMethod{lowRank{
		info: Info{
			Name: "lora-ga", Family: "gradient-init", HasRank: true,
			Paper:         Paper{Title: "LoRA-GA: Low-Rank Adaptation with Gradient Approximation", Authors: "Wang, Yu and Li", Year: 2024, ArXiv: "2407.05000"},
			Summary:       "A, B from the SVD of the estimated full gradient; residual W0 − s·B·A frozen",
			AltOptions:    map[string]any{"direction": "A2rBr", "scale": "unit"},
			Options:       opts, // α = 16 for r = 8 as in HF PEFT's LoRA-GA example
			ParamsFormula: "Σ r·(in+out)",
		},
		wrap:  func(at *loraAttachment, o Options) Attachment { return &loraGA{loraAttachment: at, o: o} },
		count: loraParams,
	}})
}
