package methods

import (
	"fmt"
	"slices"

	"peftbench/nn"
)

// EstimateInputs returns an InputEstimator that runs forward(g, b) for
// batches b = 0, 1, … (the model's forward pass on the b-th calibration
// batch, its output unused) with a recorder in place of each layer's
// adapter, and returns what each layer received. The adapters are restored
// afterwards.
func EstimateInputs(forward func(g *nn.Graph, batch int)) InputEstimator {
	return func(layers []*nn.Linear, batches int) ([][]float32, error) {
		if batches <= 0 {
			return nil, fmt.Errorf("methods: input estimate over %d batches", batches)
		}
		recs := make([]*inputRecorder, len(layers))
		saved := make([]nn.Adapter, len(layers))
		for i, l := range layers {
			recs[i] = &inputRecorder{}
			saved[i], l.Adapter = l.Adapter, recs[i]
		}
		defer func() {
			for i, l := range layers {
				l.Adapter = saved[i]
			}
		}()
		g := nn.NewGraph()
		for b := range batches {
			g.Reset()
			forward(g, b)
		}
		out := make([][]float32, len(layers))
		for i, r := range recs {
			if r.rows == nil {
				return nil, fmt.Errorf("methods: input estimate: layer %s saw no input", layers[i].Name)
			}
			out[i] = r.rows
		}
		return out, nil
	}
}

// inputRecorder is the base layer with its inputs recorded.
type inputRecorder struct{ rows []float32 }

func (r *inputRecorder) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	r.rows = append(r.rows, x.Data...)
	return l.Base(g, x)
}

func (r *inputRecorder) Params() []nn.ParamRef { return nil }

func (r *inputRecorder) Merged(l *nn.Linear) []float32 { return slices.Clone(l.Weight.Data) }
