package nn

import "fmt"

// ParamRef names a trainable tensor for the optimiser: LRMul scales the
// base learning rate (1 = base; LoRA+ gives B a larger one) and Decay says
// whether decoupled weight decay applies (off for biases and norms).
type ParamRef struct {
	Name  string
	T     *Tensor
	LRMul float32
	Decay bool
}

// Adapter is what a PEFT method attaches to a Linear.
type Adapter interface {
	// Forward returns the adapted layer's output for x (N×In), bias
	// included, inside the graph. Low-rank methods compute it fused,
	// x·W0ᵀ + s·(x·Aᵀ)·Bᵀ, without forming a dense ΔW.
	Forward(g *Graph, l *Linear, x *Tensor) *Tensor
	// Params lists the adapter's trainable tensors.
	Params() []ParamRef
	// Merged returns W0 + ΔW (Out×In, row-major) in a new slice, for
	// spectra, merging and export.
	Merged(l *Linear) []float32
}

// Linear is y = x·Wᵀ + b with a frozen base weight and a slot for an adapter.
type Linear struct {
	Name    string  // stable dotted name: "fc1", "blocks.0.attn.q", "head"
	In, Out int     // input and output features
	Weight  *Tensor // W0 (Out×In); frozen (Grad nil) unless an adapter trains it
	Bias    *Tensor // (Out) or nil; frozen unless an adapter trains it
	Adapter Adapter // nil: the plain frozen layer
}

// NewLinear returns a layer initialised like torch's nn.Linear: weight
// Kaiming-uniform (a=√5), bias U(−1/√In, 1/√In). Both are frozen.
func NewLinear(name string, in, out int, bias bool, rng *RNG) *Linear {
	l := &Linear{Name: name, In: in, Out: out, Weight: New(out, in)}
	l.Weight.Name = name + ".weight"
	rng.KaimingUniform(l.Weight, in)
	if bias {
		l.Bias = New(out)
		l.Bias.Name = name + ".bias"
		rng.KaimingUniform(l.Bias, in)
	}
	return l
}

// Forward maps x (N×In) to (N×Out), through the adapter when one is set.
func (l *Linear) Forward(g *Graph, x *Tensor) *Tensor {
	if x.Cols() != l.In {
		panic(fmt.Sprintf("nn: %s: input has %d features, want %d", l.Name, x.Cols(), l.In))
	}
	if l.Adapter != nil {
		return l.Adapter.Forward(g, l, x)
	}
	return l.Base(g, x)
}

// Base returns x·W0ᵀ + b, the layer without its adapter. Adapters call it
// and add their update.
func (l *Linear) Base(g *Graph, x *Tensor) *Tensor {
	return g.Linear(x, l.Weight, l.Bias)
}

// Merged returns W0 + ΔW: the adapter's merged weight, or a copy of W0.
func (l *Linear) Merged() []float32 {
	if l.Adapter != nil {
		return l.Adapter.Merged(l)
	}
	return append([]float32(nil), l.Weight.Data...)
}

// ZeroGrads clears the gradients of params.
func ZeroGrads(params []ParamRef) {
	for _, p := range params {
		p.T.ZeroGrad()
	}
}

// SetTrainable allocates (on) or drops (off) the gradients of params.
func SetTrainable(params []ParamRef, on bool) {
	for _, p := range params {
		p.T.SetRequiresGrad(on)
	}
}

// CountParams returns the total number of elements in params.
func CountParams(params []ParamRef) int {
	n := 0
	for _, p := range params {
		n += p.T.Size()
	}
	return n
}
