package methods

func init() {
	// κ = 5: resampled (with the moment transferred) after steps 5, 10, 15.
	addTorchCase(torchSpec{name: "flora", method: "flora",
		opts: map[string]any{"rank": 4, "kappa": 5, "projection_seed": 3}, lr: 1e-2, clip: 0.05})
}
