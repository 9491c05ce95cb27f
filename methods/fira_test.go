package methods

func init() {
	addTorchCase(torchSpec{name: "fira", method: "fira",
		opts: map[string]any{"rank": 4, "update_proj_gap": 5}, lr: 1e-2, clip: 0.05})
	addTorchCase(torchSpec{name: "fira-scale1", method: "fira",
		opts: map[string]any{"rank": 2, "update_proj_gap": 7, "scale": 1.0}, lr: 1e-2, clip: 0.05})
}
