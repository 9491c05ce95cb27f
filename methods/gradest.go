package methods

import (
	"fmt"

	"peftbench/nn"
)

// EstimateGrads returns a GradEstimator for a trainer: it switches off the
// adapters of the requested layers, makes their weights W0 trainable, runs
// loss for batches 0…n−1 (forward and backward, one fresh graph each) and
// returns the mean of dL/dW0 per layer. It restores the adapters and W0's
// frozen state before returning. Gradients of other trainable tensors
// accumulate meanwhile; the trainer zeroes them before its first step.
func EstimateGrads(loss func(g *nn.Graph, batch int) *nn.Tensor) GradEstimator {
	return func(layers []*nn.Linear, batches int) ([][]float32, error) {
		if batches <= 0 {
			return nil, fmt.Errorf("methods: gradient estimate over %d batches", batches)
		}
		saved := make([]nn.Adapter, len(layers))
		for i, l := range layers {
			if l.Weight.RequiresGrad() {
				return nil, fmt.Errorf("methods: gradient estimate: %s's weight is already trainable", l.Name)
			}
			saved[i], l.Adapter = l.Adapter, nil
			l.Weight.SetRequiresGrad(true)
		}
		defer func() {
			for i, l := range layers {
				l.Adapter = saved[i]
				l.Weight.SetRequiresGrad(false)
			}
		}()
		g := nn.NewGraph()
		for b := range batches {
			g.Reset()
			g.Backward(loss(g, b))
		}
		out := make([][]float32, len(layers))
		inv := 1 / float32(batches)
		for i, l := range layers {
			out[i] = make([]float32, len(l.Weight.Grad))
			for j, v := range l.Weight.Grad {
				out[i][j] = v * inv
			}
		}
		return out, nil
	}
}
