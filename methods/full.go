package methods

import "peftbench/nn"

// Full is full fine-tuning as a method: the layer's own weight and bias
// become trainable and the adapter adds nothing. Base keeps a copy of W0 so
// spectra can compare the tuned weight with it.
type Full struct {
	W, B *nn.Tensor // the layer's weight and bias (B may be nil)
	Base []float32  // W0 at creation
}

// NewFull makes l's weight and bias trainable and returns the adapter. It
// does not attach itself: set l.Adapter.
func NewFull(l *nn.Linear) *Full {
	l.Weight.SetRequiresGrad(true)
	if l.Bias != nil {
		l.Bias.SetRequiresGrad(true)
	}
	return &Full{W: l.Weight, B: l.Bias, Base: append([]float32(nil), l.Weight.Data...)}
}

// Forward is the plain layer with its trainable weight.
func (f *Full) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor { return l.Base(g, x) }

// Params returns the weight (with decay) and the bias (without).
func (f *Full) Params() []nn.ParamRef {
	ps := []nn.ParamRef{{Name: f.W.Name, T: f.W, LRMul: 1, Decay: true}}
	if f.B != nil {
		ps = append(ps, nn.ParamRef{Name: f.B.Name, T: f.B, LRMul: 1})
	}
	return ps
}

// Merged returns a copy of the current weight.
func (f *Full) Merged(l *nn.Linear) []float32 { return append([]float32(nil), l.Weight.Data...) }

// TrainableParams is Out·In (+ Out with a bias).
func (f *Full) TrainableParams(l *nn.Linear) int {
	n := l.Out * l.In
	if l.Bias != nil {
		n += l.Out
	}
	return n
}
