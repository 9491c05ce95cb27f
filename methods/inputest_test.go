package methods

import (
	"slices"
	"testing"

	"peftbench/nn"
)

func TestEstimateInputs(t *testing.T) {
	// Each layer receives what the model feeds it with adapters off, the
	// batches' rows stacked in order; the adapters are restored.
	mlp := nn.NewMLP([]int{3, 4, 2}, nn.NewRNG(1, "init"))
	rng := nn.NewRNG(1, "data")
	xs := []*nn.Tensor{nn.New(2, 3), nn.New(5, 3)}
	for _, x := range xs {
		rng.FillNormal(x, 0, 1)
	}
	if _, err := Attach("lora", mlp.Layers, map[string]any{"rank": 1}, nn.NewRNG(1, "method")); err != nil {
		t.Fatal(err)
	}
	lora := mlp.Layers[1].Adapter.(*LoRA)
	lora.B.Data[0] = 7 // an adapter that changes layer 1's output must not change layer 1's recorded input
	est := EstimateInputs(func(g *nn.Graph, b int) { mlp.Forward(g, xs[b]) })
	got, err := est(mlp.Layers, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Concat(xs[0].Data, xs[1].Data); !slices.Equal(got[0], want) {
		t.Errorf("layer 0 inputs %v, want the batches stacked %v", got[0], want)
	}
	if len(got[1]) != 7*4 {
		t.Fatalf("layer 1: %d inputs, want 7 rows × 4", len(got[1]))
	}
	// Layer 1's input is the activation of the base layer 0.
	g := nn.NewGraph()
	saved := mlp.Layers[0].Adapter
	mlp.Layers[0].Adapter = nil
	h := nn.Activate(g, mlp.Act, mlp.Layers[0].Forward(g, nn.FromData(slices.Concat(xs[0].Data, xs[1].Data), 7, 3)))
	mlp.Layers[0].Adapter = saved
	if !slices.Equal(got[1], h.Data) {
		t.Errorf("layer 1 inputs differ from the base layer 0's activations")
	}
	if mlp.Layers[1].Adapter != lora {
		t.Error("adapter not restored")
	}
	if _, err := est(mlp.Layers, 0); err == nil {
		t.Error("an estimate over 0 batches: no error")
	}
}
