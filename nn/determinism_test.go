package nn_test

import (
	"math"
	"runtime"
	"testing"

	"peftbench/nn"
)

// TestDeterministicAcrossGOMAXPROCS trains for 200 steps with GOMAXPROCS=1
// and =2 and requires bit-identical weights: no op, kernel or reduction may
// let the number of goroutines change a result.
func TestDeterministicAcrossGOMAXPROCS(t *testing.T) {
	steps := 200
	if testing.Short() {
		steps = 20
	}
	cfg := nn.TransformerConfig{Vocab: 17, Dim: 32, Heads: 4, Blocks: 2, Seq: 16, Dropout: 0.1}
	setups := []struct {
		name string
		mk   func() *nn.RefTrainer
	}{
		{"MLP/LoRA", func() *nn.RefTrainer { return nn.NewRefMLP([]int{64, 96, 96, 10}, 48, 7, attachLoRA(4, 7)) }},
		{"MLP/Full", func() *nn.RefTrainer { return nn.NewRefMLP([]int{64, 96, 96, 10}, 48, 7, attachFull) }},
		{"Transformer/LoRA", func() *nn.RefTrainer { return nn.NewRefTransformer(cfg, 6, 7, attachLoRA(4, 7)) }},
		{"Transformer/Full", func() *nn.RefTrainer {
			r := nn.NewRefTransformer(cfg, 6, 7, attachFull)
			nn.SetTrainable(r.Model.Params(), true)
			r.Params = nn.AllParams(r.Model)
			return r
		}},
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			var weights [2][][]float32
			var losses [2][2]float32
			for i, procs := range []int{1, 2} {
				runtime.GOMAXPROCS(procs)
				r := s.mk()
				if tr, ok := r.Model.(*nn.Transformer); ok {
					tr.DropoutRNG = nn.NewRNG(7, "dropout")
				}
				losses[i][0] = r.Step()
				for range steps - 1 {
					losses[i][1] = r.Step()
				}
				for _, p := range r.Params {
					weights[i] = append(weights[i], append([]float32(nil), p.T.Data...))
				}
			}
			if !(losses[0][1] < losses[0][0]) {
				t.Errorf("loss did not fall: %v → %v", losses[0][0], losses[0][1])
			}
			if losses[0] != losses[1] {
				t.Errorf("losses differ: GOMAXPROCS=1 %v, =2 %v", losses[0], losses[1])
			}
			for k := range weights[0] {
				for j, v := range weights[0][k] {
					if math.Float32bits(v) != math.Float32bits(weights[1][k][j]) {
						t.Fatalf("tensor %d element %d: %v with GOMAXPROCS=1, %v with 2", k, j, v, weights[1][k][j])
					}
				}
			}
		})
	}
}
