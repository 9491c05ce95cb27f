package nn

import "fmt"

// MLP is a multilayer perceptron classifier: Linear layers with an
// activation between them and none after the last, which gives logits.
// The layers are named fc1, fc2, … and the last one head.
type MLP struct {
	Layers []*Linear
	Act    string // "relu" (default), "gelu" or "tanh"
}

// NewMLP returns an MLP with the given layer sizes, e.g. {784, 256, 256, 10},
// initialised like torch's nn.Linear from rng.
func NewMLP(sizes []int, rng *RNG) *MLP {
	if len(sizes) < 2 {
		panic(fmt.Sprintf("nn: NewMLP: sizes %v, want at least input and output", sizes))
	}
	m := &MLP{Act: "relu"}
	for i := 0; i+1 < len(sizes); i++ {
		name := fmt.Sprintf("fc%d", i+1)
		if i+2 == len(sizes) {
			name = "head"
		}
		m.Layers = append(m.Layers, NewLinear(name, sizes[i], sizes[i+1], true, rng))
	}
	return m
}

// Forward returns the logits for x (N×sizes[0]).
func (m *MLP) Forward(g *Graph, x *Tensor) *Tensor {
	for i, l := range m.Layers {
		x = l.Forward(g, x)
		if i+1 < len(m.Layers) {
			x = Activate(g, m.Act, x)
		}
	}
	return x
}

// Activate applies the named activation: "relu", "gelu" (tanh form),
// "tanh", or "" (identity).
func Activate(g *Graph, name string, x *Tensor) *Tensor {
	switch name {
	case "relu", "":
		if name == "" {
			return x
		}
		return g.ReLU(x)
	case "gelu":
		return g.GELU(x)
	case "tanh":
		return g.Tanh(x)
	}
	panic(fmt.Sprintf("nn: unknown activation %q", name))
}

// Linears returns the layers in order.
func (m *MLP) Linears() []*Linear { return m.Layers }

// Norms returns nothing: an MLP has no norm layers.
func (m *MLP) Norms() []*Norm { return nil }

// Params returns nothing: an MLP's tensors all belong to its linears.
func (m *MLP) Params() []ParamRef { return nil }

// StateDict maps fc1.weight, fc1.bias, …, head.bias to the base tensors.
func (m *MLP) StateDict() map[string]*Tensor {
	sd := map[string]*Tensor{}
	linearState(sd, m.Layers)
	return sd
}

// LoadStateDict copies sd into the model (see Model).
func (m *MLP) LoadStateDict(sd map[string]*Tensor) error { return LoadState(m.StateDict(), sd) }
