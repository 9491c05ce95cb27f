package methods

import (
	"slices"

	"peftbench/nn"
)

func graloraExport(l *nn.Linear) map[string][]float32 {
	m := l.Adapter.(*GraLoRA)
	e := map[string][]float32{"gralora_A": slices.Clone(m.A.Data)}
	if m.AG != nil {
		e["gralora_A_general"] = slices.Clone(m.AG.Data)
	}
	return e
}

func init() {
	addTorchCase(torchSpec{name: "gralora", method: "gralora",
		opts: map[string]any{"rank": 8, "alpha": 16}, lr: 1e-2, clip: 0.05, export: graloraExport})
	addTorchCase(torchSpec{name: "gralora-hybrid", method: "gralora",
		opts: map[string]any{"rank": 8, "alpha": 16, "gralora_k": 4, "hybrid_r": 2}, lr: 1e-2, clip: 0.05, export: graloraExport})
}
