package methods

func init() {
	opts := append(loraOptions(8, 8, "kaiming", "gaussian", "pissa", "olora"),
		floatOpt("lr_ratio", 16, fptr(1), nil, "λ: B's learning rate over A's (loraplus_lr_ratio)"))
	Register("loraplus", &lowRank{
		info: Info{
			Name: "loraplus", Family: "lora", HasRank: true,
			Paper:         Paper{Title: "LoRA+: Efficient Low Rank Adaptation of Large Models", Authors: "Hayou, Ghosh and Yu", Year: 2024, ArXiv: "2402.12354"},
			Summary:       "LoRA with B's learning rate λ = 16 times A's",
			AltOptions:    map[string]any{"rank": 4, "lr_ratio": 4},
			Options:       opts,
			ParamsFormula: "Σ r·(in+out)",
		},
		configure: func(a *LoRA, o Options) { a.LRMulB = float32(o.Float("lr_ratio")) },
		count:     loraParams,
	})
}
