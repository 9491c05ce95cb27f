package methods

import (
	"slices"

	"peftbench/nn"
)

func init() {
	addTorchCase(torchSpec{name: "vblora", method: "vblora",
		opts: map[string]any{"rank": 4, "num_vectors": 32, "vector_length": 8, "topk": 2},
		lr:   1e-2, clip: 0.05,
		export: func(l *nn.Linear) map[string][]float32 {
			v := l.Adapter.(*VBLoRA)
			return map[string][]float32{"bank": slices.Clone(v.Bank.Data),
				"logits_A": slices.Clone(v.LogitsA.Data), "logits_B": slices.Clone(v.LogitsB.Data)}
		}})
}
