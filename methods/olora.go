package methods

import "peftbench/nn"

// initOLoRA initialises a LoRA adapter from the QR factorisation of W0 (HF
// PEFT's init_lora_weights="olora"): W0 = Q·R, B = Q[:, :r], A = R[:r], and
// the frozen residual is W0 − s·B·A.
func initOLoRA(a *LoRA, l *nn.Linear) error {
	q, r := qr(l.Weight.Data, l.Out, l.In)
	k := a.Rank
	toF32(a.B.Data, q.Slice(0, l.Out, 0, k))
	toF32(a.A.Data, r.Slice(0, k, 0, l.In))
	a.setResidual(l)
	return nil
}

func init() {
	Register("olora", &lowRank{
		info: Info{
			Name: "olora", Family: "svd-init", HasRank: true,
			Paper:         Paper{Title: "OLoRA: Orthonormal Low-Rank Adaptation of Large Language Models", Authors: "Büyükakyüz", Year: 2024, ArXiv: "2406.01775"},
			Summary:       "B = Q[:, :r], A = R[:r] from the QR of W0; residual W0 − s·B·A frozen",
			AltOptions:    map[string]any{"rank": 4, "alpha": 4},
			Options:       loraOptions(8, 8, "olora", "kaiming", "gaussian"),
			ParamsFormula: "Σ r·(in+out)",
		},
		count: loraParams,
	})
}
