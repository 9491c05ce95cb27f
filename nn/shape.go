package nn

import "fmt"

// Embedding returns the rows table[ids[i]]: table (V×D) → (len(ids)×D).
// ids must stay unchanged until Backward has run.
func (g *Graph) Embedding(table *Tensor, ids []int) *Tensor {
	v, d := table.Rows(), table.Cols()
	rec := g.needs(table)
	y := g.out(rec, len(ids), d)
	for i, id := range ids {
		if id < 0 || id >= v {
			panic(fmt.Sprintf("nn: Embedding: id %d at %d out of range [0,%d)", id, i, v))
		}
		copy(y.Data[i*d:(i+1)*d], table.Data[id*d:(id+1)*d])
	}
	if rec {
		n := g.record(backEmbedding, y)
		n.a, n.ids = table, ids
	}
	return y
}

func backEmbedding(g *Graph, n *node) {
	d := n.a.Cols()
	for i, id := range n.ids {
		addTo(n.out.Grad[i*d:(i+1)*d], n.a.Grad[id*d:(id+1)*d])
	}
}

// Reshape returns a view of x with a new shape of the same size; it shares
// x's data and gradient.
func (g *Graph) Reshape(x *Tensor, shape ...int) *Tensor {
	if numel(shape) != x.Size() {
		panic(fmt.Sprintf("nn: Reshape: %v to %v changes the size", x.Shape, shape))
	}
	y := g.header(shape...)
	y.Data, y.Grad = x.Data, x.Grad
	if g.NoGrad {
		y.Grad = nil
	}
	return y
}

// Detach returns a view of x's data that carries no gradient.
func (g *Graph) Detach(x *Tensor) *Tensor {
	y := g.header(x.Shape...)
	y.Data = x.Data
	return y
}

// Transpose returns xᵀ of a 2-D x.
func (g *Graph) Transpose(x *Tensor) *Tensor {
	r, c := mat2("Transpose", x)
	rec := g.needs(x)
	y := g.out(rec, c, r)
	transpose(y.Data, x.Data, r, c)
	if rec {
		n := g.record(backTranspose, y)
		n.a = x
	}
	return y
}

func backTranspose(g *Graph, n *node) {
	r, c := n.a.Shape[0], n.a.Shape[1]
	for i := range r {
		for j := range c {
			n.a.Grad[i*c+j] += n.out.Grad[j*r+i]
		}
	}
}

// transpose: dst (c×r) = src (r×c)ᵀ.
func transpose(dst, src []float32, r, c int) {
	for i := range r {
		for j, v := range src[i*c : (i+1)*c] {
			dst[j*r+i] = v
		}
	}
}

func mat2(op string, x *Tensor) (int, int) {
	if len(x.Shape) != 2 {
		panic(fmt.Sprintf("nn: %s: want a 2-D tensor, have shape %v", op, x.Shape))
	}
	return x.Shape[0], x.Shape[1]
}

// SliceRows returns rows [lo, hi) of x (a view: shares data and gradient).
func (g *Graph) SliceRows(x *Tensor, lo, hi int) *Tensor {
	r, c := x.Rows(), x.Cols()
	if lo < 0 || hi > r || lo > hi {
		panic(fmt.Sprintf("nn: SliceRows: [%d,%d) of %d rows", lo, hi, r))
	}
	y := g.header(hi-lo, c)
	y.Data = x.Data[lo*c : hi*c]
	if x.Grad != nil && !g.NoGrad {
		y.Grad = x.Grad[lo*c : hi*c]
	}
	return y
}

// SliceCols returns columns [lo, hi) of x (R×C) as a new (R×(hi−lo)) tensor.
func (g *Graph) SliceCols(x *Tensor, lo, hi int) *Tensor {
	r, c := x.Rows(), x.Cols()
	if lo < 0 || hi > c || lo > hi {
		panic(fmt.Sprintf("nn: SliceCols: [%d,%d) of %d columns", lo, hi, c))
	}
	w := hi - lo
	rec := g.needs(x)
	y := g.out(rec, r, w)
	for i := range r {
		copy(y.Data[i*w:(i+1)*w], x.Data[i*c+lo:i*c+hi])
	}
	if rec {
		n := g.record(backSliceCols, y)
		n.a, n.i0 = x, lo
	}
	return y
}

func backSliceCols(g *Graph, n *node) {
	c, w := n.a.Cols(), n.out.Cols()
	for i := range n.a.Rows() {
		addTo(n.out.Grad[i*w:(i+1)*w], n.a.Grad[i*c+n.i0:i*c+n.i0+w])
	}
}

// ConcatRows stacks 2-D tensors with equal column counts vertically.
func (g *Graph) ConcatRows(xs ...*Tensor) *Tensor {
	c, r := xs[0].Cols(), 0
	for _, x := range xs {
		if x.Cols() != c {
			panic(fmt.Sprintf("nn: ConcatRows: %d columns, want %d", x.Cols(), c))
		}
		r += x.Rows()
	}
	rec := g.needs(xs...)
	y := g.out(rec, r, c)
	off := 0
	for _, x := range xs {
		off += copy(y.Data[off:], x.Data)
	}
	if rec {
		n := g.record(backConcatRows, y)
		n.list = append(n.list[:0], xs...)
	}
	return y
}

func backConcatRows(g *Graph, n *node) {
	off := 0
	for _, x := range n.list {
		if x.Grad != nil {
			addTo(n.out.Grad[off:off+len(x.Data)], x.Grad)
		}
		off += len(x.Data)
	}
}

// ConcatCols joins tensors with equal row counts side by side.
func (g *Graph) ConcatCols(xs ...*Tensor) *Tensor {
	r, c := xs[0].Rows(), 0
	for _, x := range xs {
		if x.Rows() != r {
			panic(fmt.Sprintf("nn: ConcatCols: %d rows, want %d", x.Rows(), r))
		}
		c += x.Cols()
	}
	rec := g.needs(xs...)
	y := g.out(rec, r, c)
	off := 0
	for _, x := range xs {
		w := x.Cols()
		for i := range r {
			copy(y.Data[i*c+off:i*c+off+w], x.Data[i*w:(i+1)*w])
		}
		off += w
	}
	if rec {
		n := g.record(backConcatCols, y)
		n.list = append(n.list[:0], xs...)
	}
	return y
}

func backConcatCols(g *Graph, n *node) {
	r, c := n.out.Rows(), n.out.Cols()
	off := 0
	for _, x := range n.list {
		w := x.Cols()
		if x.Grad != nil {
			for i := range r {
				addTo(n.out.Grad[i*c+off:i*c+off+w], x.Grad[i*w:(i+1)*w])
			}
		}
		off += w
	}
}

// Dropout zeroes each element with probability p and scales the rest by
// 1/(1−p) (inverted dropout). With p ≤ 0 or a nil rng it returns x itself,
// which is how evaluation turns it off.
func (g *Graph) Dropout(x *Tensor, p float32, rng *RNG) *Tensor {
	if p <= 0 || rng == nil {
		return x
	}
	if p >= 1 {
		panic(fmt.Sprintf("nn: Dropout: p = %g, want [0,1)", p))
	}
	rec := g.needs(x)
	y := g.out(rec, x.Shape...)
	mask := g.buf(len(x.Data))
	keep := 1 / (1 - p)
	for i, v := range x.Data {
		m := float32(0)
		if rng.Float32() >= p {
			m = keep
		}
		mask[i] = m
		y.Data[i] = v * m
	}
	if rec {
		n := g.record(backDropout, y)
		n.a, n.aux = x, mask
	}
	return y
}

func backDropout(g *Graph, n *node) { mulAdd(n.a.Grad, n.out.Grad, n.aux) }
