package nn

import "fmt"

// Graph is the autodiff tape of one forward pass. Ops are methods on the
// graph; each records a node whose backward function adds the gradient of
// the loss with respect to the op's inputs to their Grad buffers.
//
// Reset rewinds the graph: node records, output tensors and their buffers
// are reused by the next pass, so a steady-state training step allocates
// only a small constant number of objects, whatever the batch size.
//
// With NoGrad set, ops record nothing and their outputs carry no gradient
// (inference, evaluation). With Meter set, the arena charges it with every
// buffer it grows (HeldBytes).
type Graph struct {
	NoGrad bool
	Meter  *Meter

	nodes []node
	nn    int
	bufs  [][]float32
	nb    int
	tens  []*Tensor
	nt    int
	ints  [][]int
	ni    int

	scratch  []float64
	scratchF []float32
	held     int64 // bytes of bufs, ints, scratch and scratchF
}

// node is one recorded op. back is a plain function (no closure) so that
// recording allocates nothing; the fields hold what it needs.
type node struct {
	back    func(g *Graph, n *node)
	out     *Tensor
	a, b, c *Tensor
	i0, i1  int
	i2, i3  int
	f0      float32
	ids     []int
	aux     []float32
	aux2    []float32
	list    []*Tensor
	fn      *Func
}

// NewGraph returns an empty graph.
func NewGraph() *Graph { return &Graph{} }

// Reset forgets every recorded op and rewinds the arena. Tensors returned by
// ops before Reset must not be used after it.
func (g *Graph) Reset() {
	for i := 0; i < g.nn; i++ {
		n := &g.nodes[i]
		list := n.list[:0]
		clear(n.list)
		*n = node{list: list}
	}
	g.nn, g.nb, g.nt, g.ni = 0, 0, 0, 0
}

// Len is the number of ops recorded since the last Reset.
func (g *Graph) Len() int { return g.nn }

// Backward runs the tape in reverse from loss, a one-element tensor, adding
// d loss/d x to the Grad of every tensor x on the path. Gradients of
// parameters accumulate across calls; clear them with ZeroGrads.
func (g *Graph) Backward(loss *Tensor) {
	if loss.Size() != 1 {
		panic(fmt.Sprintf("nn: Backward: loss has shape %v, want one element", loss.Shape))
	}
	if loss.Grad == nil {
		panic("nn: Backward: loss does not depend on any trainable tensor")
	}
	loss.Grad[0] += 1
	for i := g.nn - 1; i >= 0; i-- {
		n := &g.nodes[i]
		if n.out.Grad != nil {
			n.back(g, n)
		}
	}
}

// record appends a node and returns it for the op to fill.
func (g *Graph) record(back func(*Graph, *node), out *Tensor) *node {
	if g.nn == len(g.nodes) {
		g.nodes = append(g.nodes, node{})
	}
	n := &g.nodes[g.nn]
	g.nn++
	n.back = back
	n.out = out
	return n
}

// buf returns an arena buffer of length n; its contents are arbitrary.
func (g *Graph) buf(n int) []float32 {
	if g.nb == len(g.bufs) {
		g.bufs = append(g.bufs, nil)
	}
	b := g.bufs[g.nb]
	if cap(b) < n {
		g.grow(4*cap(b), 4*n)
		b = make([]float32, n)
		g.bufs[g.nb] = b
	}
	g.nb++
	return b[:n]
}

// zbuf returns a zeroed arena buffer of length n.
func (g *Graph) zbuf(n int) []float32 {
	b := g.buf(n)
	clear(b)
	return b
}

// intbuf returns an arena int slice of length n; contents arbitrary.
func (g *Graph) intbuf(n int) []int {
	if g.ni == len(g.ints) {
		g.ints = append(g.ints, nil)
	}
	b := g.ints[g.ni]
	if cap(b) < n {
		g.grow(intSize*cap(b), intSize*n)
		b = make([]int, n)
		g.ints[g.ni] = b
	}
	g.ni++
	return b[:n]
}

// header returns an arena tensor struct with the given shape and no buffers.
func (g *Graph) header(shape ...int) *Tensor {
	if g.nt == len(g.tens) {
		g.tens = append(g.tens, &Tensor{})
	}
	t := g.tens[g.nt]
	g.nt++
	t.Name = ""
	t.Shape = append(t.Shape[:0], shape...)
	t.Data, t.Grad = nil, nil
	return t
}

// out returns an op output of the given shape with uninitialised data and,
// when grad is true and the graph records, a zeroed gradient buffer.
func (g *Graph) out(grad bool, shape ...int) *Tensor {
	t := g.header(shape...)
	t.Data = g.buf(numel(shape))
	if grad && !g.NoGrad {
		t.Grad = g.zbuf(len(t.Data))
	}
	return t
}

// needs reports whether an op with these inputs must record a node.
func (g *Graph) needs(ts ...*Tensor) bool {
	if g.NoGrad {
		return false
	}
	for _, t := range ts {
		if t != nil && t.Grad != nil {
			return true
		}
	}
	return false
}

// Const wraps data (not copied) as a graph tensor that needs no gradient.
func (g *Graph) Const(data []float32, shape ...int) *Tensor {
	if n := numel(shape); n != len(data) {
		panic(fmt.Sprintf("nn: Const: %d values for shape %v", len(data), shape))
	}
	t := g.header(shape...)
	t.Data = data
	return t
}

// Zeros returns a zeroed graph tensor that needs no gradient.
func (g *Graph) Zeros(shape ...int) *Tensor {
	t := g.header(shape...)
	t.Data = g.zbuf(numel(shape))
	return t
}
