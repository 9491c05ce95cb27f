package methods

import (
	"testing"

	"peftbench/nn"
)

// BenchmarkStep times one training step (forward, backward, hooks, AdamW)
// of every registered method with its default options on the reference
// MLP (fc1, fc2 targeted, batch 16), transformer (every linear, 2×16
// tokens) and tiny LM checkpoints (attention and MLP linears, 2×12 tokens).
func BenchmarkStep(b *testing.B) {
	for _, name := range Names() {
		for mi, ref := range refModels(1) {
			b.Run(name+"/"+ref.name, func(b *testing.B) {
				m := refModels(1)[mi] // fresh: b.Run calls this more than once
				if why := m.refuse[name+"/defaults"]; why != "" {
					b.Skipf("%s refuses %s: %s", name, m.name, why)
				}
				att, err := Attach(name, m.targets, nil, nn.NewRNG(1, "method"))
				if err != nil {
					b.Fatal(err)
				}
				tr := newTrainer(b, att, m.loss)
				b.ResetTimer()
				for i := range b.N {
					tr.step(i%100, 100, 1e-4)
				}
			})
		}
	}
}
