package nn

import "fmt"

// Func is a differentiable function of some tensors that an op of the
// graph does not cover (a Kronecker product, a 2-D inverse DFT, a Cayley
// transform): Forward fills y from the inputs' Data; Backward adds the
// gradient of the loss with respect to each input that has a Grad, given
// dy, the gradient with respect to y. Backward must skip inputs whose Grad
// is nil. Methods build their own ΔW or W' this way without growing nn.
type Func struct {
	Name     string
	Forward  func(y []float32, in []*Tensor)
	Backward func(dy []float32, in []*Tensor)
}

// Custom returns f(inputs) as a tensor of the given shape, recording f's
// Backward when any input needs a gradient. The inputs slice is kept until
// Reset.
func (g *Graph) Custom(f *Func, shape []int, inputs ...*Tensor) *Tensor {
	if f.Forward == nil || f.Backward == nil {
		panic(fmt.Sprintf("nn: Custom %s: Forward and Backward must both be set", f.Name))
	}
	rec := g.needs(inputs...)
	y := g.out(rec, shape...)
	f.Forward(y.Data, inputs)
	if rec {
		n := g.record(backCustom, y)
		n.list = append(n.list[:0], inputs...)
		n.fn = f
	}
	return y
}

func backCustom(g *Graph, n *node) { n.fn.Backward(n.out.Grad, n.list) }
