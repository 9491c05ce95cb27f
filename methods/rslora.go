package methods

func init() {
	Register("rslora", &lowRank{
		info: Info{
			Name: "rslora", Family: "lora", HasRank: true,
			Paper:         Paper{Title: "A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA", Authors: "Kalajdzievski", Year: 2023, ArXiv: "2312.03732"},
			Summary:       "LoRA with s = α/√r, which keeps learning stable as r grows",
			AltOptions:    map[string]any{"rank": 4, "alpha": 16, "init": "olora"},
			Options:       loraOptions(8, 8, "kaiming", "gaussian", "pissa", "olora"),
			ParamsFormula: "Σ r·(in+out)",
		},
		sqrtScale: true,
		count:     loraParams,
	})
}
