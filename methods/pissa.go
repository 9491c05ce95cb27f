package methods

import (
	"math"

	"peftbench/nn"
)

// initPiSSA initialises a LoRA adapter from the principal singular triplets
// of W0 (HF PEFT's init_lora_weights="pissa", exact SVD): with
// W0 = U·S·Vᵀ, A = √(S_r/s)·V_rᵀ and B = U_r·√(S_r/s), so s·B·A is W0's best
// rank-r approximation, and the frozen residual is W0 − s·B·A.
func initPiSSA(a *LoRA, l *nn.Linear) error {
	u, s, v, err := svd(l.Weight.Data, l.Out, l.In)
	if err != nil {
		return err
	}
	r, sc := a.Rank, float64(a.Scale)
	for p := range r {
		root := math.Sqrt(s[p] / sc)
		for j := range l.In {
			a.A.Data[p*l.In+j] = float32(root * v.At(j, p))
		}
		for i := range l.Out {
			a.B.Data[i*r+p] = float32(root * u.At(i, p))
		}
	}
	a.setResidual(l)
	return nil
}

func init() {
	Register("pissa", &lowRank{
		info: Info{
			Name: "pissa", Family: "svd-init", HasRank: true,
			Paper:         Paper{Title: "PiSSA: Principal Singular Values and Singular Vectors Adaptation of Large Language Models", Authors: "Meng, Wang and Zhang", Year: 2024, ArXiv: "2404.02948"},
			Summary:       "A = √S_r·V_rᵀ, B = U_r·√S_r from the SVD of W0; residual W0 − s·B·A frozen",
			AltOptions:    map[string]any{"rank": 4, "alpha": 16},
			Options:       loraOptions(8, 8, "pissa", "kaiming", "gaussian"),
			ParamsFormula: "Σ r·(in+out)",
		},
		count: loraParams,
	})
}
