package methods

func init() {
	addTorchCase(torchSpec{name: "randlora", method: "randlora",
		opts: map[string]any{"rank": 8, "alpha": 160}, lr: 2e-3, clip: 0.05})
	addTorchCase(torchSpec{name: "randlora-sparse", method: "randlora",
		opts: map[string]any{"rank": 4, "alpha": 80, "sparse": true, "projection_prng_key": 3}, lr: 2e-3, clip: 0.05})
	addTorchCase(torchSpec{name: "randlora-very-sparse", method: "randlora",
		opts: map[string]any{"rank": 16, "alpha": 320, "very_sparse": true, "projection_prng_key": 7}, lr: 2e-3, clip: 0.05})
}
