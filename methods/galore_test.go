package methods

func init() {
	// fc1 (48×24) is projected on the right, fc2 (40×48) on the left; a
	// gap of 5 refreshes P at steps 0, 5, 10 and 15 with the moments kept.
	addTorchCase(torchSpec{name: "galore", method: "galore",
		opts: map[string]any{"rank": 4, "update_proj_gap": 5, "scale": 0.5}, lr: 1e-2, clip: 0.05})
}
