package methods

import "peftbench/nn"

// weightAdapter is an adapter whose forward builds the adapted weight W'
// (Out×In) in the graph from its parameters and applies it,
// y = x·W'ᵀ + b. Methods whose update is not a product of two thin factors
// (LoHa's Hadamard product, LoKr's Kronecker product, FourierFT's inverse
// DFT, OFT's rotation W0·Rᵀ) use it: forward, merge and gradient come from
// the one function, so the merged weight cannot disagree with the adapter.
// A method with a cheaper forward (IA3 scales activations) implements
// nn.Adapter itself and keeps weight for Merged.
type weightAdapter struct {
	// weight returns W' for l inside g (W0 + ΔW for additive methods,
	// W0·H for multiplicative ones).
	weight func(g *nn.Graph, l *nn.Linear) *nn.Tensor
	params []nn.ParamRef
}

// Forward computes x·W'ᵀ + b.
func (a *weightAdapter) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	return g.Linear(x, a.weight(g, l), l.Bias)
}

// Params returns the adapter's trainable tensors of this layer.
func (a *weightAdapter) Params() []nn.ParamRef { return a.params }

// Merged evaluates W' without recording gradients.
func (a *weightAdapter) Merged(l *nn.Linear) []float32 {
	return mergedWeight(a.weight, l)
}

// mergedWeight evaluates a weight function in a fresh no-grad graph and
// returns a copy of W'.
func mergedWeight(weight func(g *nn.Graph, l *nn.Linear) *nn.Tensor, l *nn.Linear) []float32 {
	g := &nn.Graph{NoGrad: true}
	return append([]float32(nil), weight(g, l).Data...)
}

// plusDelta returns W0 + Δ in g, for additive methods' weight functions.
func plusDelta(g *nn.Graph, l *nn.Linear, delta *nn.Tensor) *nn.Tensor {
	return g.Add(l.Weight, delta)
}

// layerAttachment is the Attachment of a method with one adapter per layer
// and, optionally, tensors shared by all layers (VB-LoRA's vector bank):
// Params lists the shared tensors first, then each adapter's, in layer
// order.
type layerAttachment struct {
	layers   []*nn.Linear
	adapters []nn.Adapter
	shared   []nn.ParamRef
}

// attachEach sets l.Adapter = adapter(l) for every layer and returns the
// attachment; an error from adapter stops it before any layer is changed.
func attachEach(layers []*nn.Linear, adapter func(l *nn.Linear) (nn.Adapter, error)) (*layerAttachment, error) {
	at := &layerAttachment{layers: layers}
	for _, l := range layers {
		a, err := adapter(l)
		if err != nil {
			return nil, err
		}
		at.adapters = append(at.adapters, a)
	}
	for i, l := range layers {
		l.Adapter = at.adapters[i]
	}
	return at, nil
}

func (at *layerAttachment) Layers() []*nn.Linear { return at.layers }

func (at *layerAttachment) Params() []nn.ParamRef {
	ps := append([]nn.ParamRef(nil), at.shared...)
	for _, a := range at.adapters {
		ps = append(ps, a.Params()...)
	}
	return ps
}

// SetTraining does nothing: these adapters have no training-time
// randomness unless they wrap the attachment to add it.
func (at *layerAttachment) SetTraining(*nn.RNG) {}

// param returns a new trainable tensor named name (HF PEFT's parameter
// name after the layer's) with the given shape, and its ParamRef.
func param(l *nn.Linear, suffix string, decay bool, shape ...int) (*nn.Tensor, nn.ParamRef) {
	t := nn.Param(l.Name+"."+suffix, shape...)
	return t, nn.ParamRef{Name: t.Name, T: t, LRMul: 1, Decay: decay}
}
