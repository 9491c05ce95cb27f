package nn

import (
	"fmt"
	"math"

	"peftbench/kernels"
)

func mustSame(op string, a, b *Tensor) {
	if !sameShape(a.Shape, b.Shape) {
		panic(fmt.Sprintf("nn: %s: shapes %v and %v differ", op, a.Shape, b.Shape))
	}
}

// Add returns a + b (same shape).
func (g *Graph) Add(a, b *Tensor) *Tensor {
	mustSame("Add", a, b)
	rec := g.needs(a, b)
	y := g.out(rec, a.Shape...)
	add(y.Data, a.Data, b.Data)
	if rec {
		n := g.record(backAdd, y)
		n.a, n.b = a, b
	}
	return y
}

func backAdd(g *Graph, n *node) {
	if n.a.Grad != nil {
		addTo(n.out.Grad, n.a.Grad)
	}
	if n.b.Grad != nil {
		addTo(n.out.Grad, n.b.Grad)
	}
}

// Sub returns a − b (same shape).
func (g *Graph) Sub(a, b *Tensor) *Tensor {
	mustSame("Sub", a, b)
	rec := g.needs(a, b)
	y := g.out(rec, a.Shape...)
	for i, v := range a.Data {
		y.Data[i] = v - b.Data[i]
	}
	if rec {
		n := g.record(backSub, y)
		n.a, n.b = a, b
	}
	return y
}

func backSub(g *Graph, n *node) {
	if n.a.Grad != nil {
		addTo(n.out.Grad, n.a.Grad)
	}
	if n.b.Grad != nil {
		axpy(-1, n.out.Grad, n.b.Grad)
	}
}

// Mul returns a ⊙ b (same shape).
func (g *Graph) Mul(a, b *Tensor) *Tensor {
	mustSame("Mul", a, b)
	rec := g.needs(a, b)
	y := g.out(rec, a.Shape...)
	for i, v := range a.Data {
		y.Data[i] = v * b.Data[i]
	}
	if rec {
		n := g.record(backMul, y)
		n.a, n.b = a, b
	}
	return y
}

func backMul(g *Graph, n *node) {
	if n.a.Grad != nil {
		mulAdd(n.a.Grad, n.out.Grad, n.b.Data)
	}
	if n.b.Grad != nil {
		mulAdd(n.b.Grad, n.out.Grad, n.a.Data)
	}
}

// Scale returns s·x.
func (g *Graph) Scale(x *Tensor, s float32) *Tensor {
	rec := g.needs(x)
	y := g.out(rec, x.Shape...)
	scaleTo(y.Data, s, x.Data)
	if rec {
		n := g.record(backScale, y)
		n.a, n.f0 = x, s
	}
	return y
}

func backScale(g *Graph, n *node) { axpy(n.f0, n.out.Grad, n.a.Grad) }

func mustVec(op string, v *Tensor, n int, what string) {
	if v.Size() != n {
		panic(fmt.Sprintf("nn: %s: %s has %d elements, want %d", op, what, v.Size(), n))
	}
}

// AddRow returns x + row, adding the vector row (length Cols) to every row of x.
func (g *Graph) AddRow(x, row *Tensor) *Tensor {
	c := x.Cols()
	mustVec("AddRow", row, c, "row")
	rec := g.needs(x, row)
	y := g.out(rec, x.Shape...)
	for i := 0; i < len(x.Data); i += c {
		add(y.Data[i:i+c], x.Data[i:i+c], row.Data)
	}
	if rec {
		n := g.record(backAddRow, y)
		n.a, n.b = x, row
	}
	return y
}

func backAddRow(g *Graph, n *node) {
	if n.a.Grad != nil {
		addTo(n.out.Grad, n.a.Grad)
	}
	if n.b.Grad != nil {
		c := len(n.b.Data)
		for i := 0; i < len(n.out.Grad); i += c {
			addTo(n.out.Grad[i:i+c], n.b.Grad)
		}
	}
}

// MulRow returns x ⊙ row, scaling column j of x by row[j].
func (g *Graph) MulRow(x, row *Tensor) *Tensor {
	c := x.Cols()
	mustVec("MulRow", row, c, "row")
	rec := g.needs(x, row)
	y := g.out(rec, x.Shape...)
	for i := 0; i < len(x.Data); i += c {
		yr, xr := y.Data[i:i+c], x.Data[i:i+c]
		for j, v := range xr {
			yr[j] = v * row.Data[j]
		}
	}
	if rec {
		n := g.record(backMulRow, y)
		n.a, n.b = x, row
	}
	return y
}

func backMulRow(g *Graph, n *node) {
	x, row, dy := n.a, n.b, n.out.Grad
	c := len(row.Data)
	for i := 0; i < len(dy); i += c {
		if x.Grad != nil {
			mulAdd(x.Grad[i:i+c], dy[i:i+c], row.Data)
		}
		if row.Grad != nil {
			mulAdd(row.Grad, dy[i:i+c], x.Data[i:i+c])
		}
	}
}

// MulCol returns x ⊙ col, scaling row i of x by col[i].
func (g *Graph) MulCol(x, col *Tensor) *Tensor {
	c := x.Cols()
	mustVec("MulCol", col, x.Rows(), "col")
	rec := g.needs(x, col)
	y := g.out(rec, x.Shape...)
	for r, s := range col.Data {
		scaleTo(y.Data[r*c:(r+1)*c], s, x.Data[r*c:(r+1)*c])
	}
	if rec {
		n := g.record(backMulCol, y)
		n.a, n.b = x, col
	}
	return y
}

func backMulCol(g *Graph, n *node) {
	x, col, dy := n.a, n.b, n.out.Grad
	c := x.Cols()
	for r, s := range col.Data {
		d := dy[r*c : (r+1)*c]
		if x.Grad != nil {
			axpy(s, d, x.Grad[r*c:(r+1)*c])
		}
		if col.Grad != nil {
			col.Grad[r] += float32(dot(d, x.Data[r*c:(r+1)*c]))
		}
	}
}

// Sum returns the sum of all elements as a scalar (shape []).
func (g *Graph) Sum(x *Tensor) *Tensor {
	rec := g.needs(x)
	y := g.out(rec)
	y.Data[0] = float32(sum(x.Data))
	if rec {
		n := g.record(backSum, y)
		n.a, n.f0 = x, 1
	}
	return y
}

// Mean returns the mean of all elements as a scalar (shape []).
func (g *Graph) Mean(x *Tensor) *Tensor {
	rec := g.needs(x)
	y := g.out(rec)
	y.Data[0] = float32(sum(x.Data) / float64(len(x.Data)))
	if rec {
		n := g.record(backSum, y)
		n.a, n.f0 = x, float32(1/float64(len(x.Data)))
	}
	return y
}

func backSum(g *Graph, n *node) {
	d := n.out.Grad[0] * n.f0
	for i := range n.a.Grad {
		n.a.Grad[i] += d
	}
}

// SumRows returns the sum of each row: x (R×C) → (R), torch x.sum(-1).
func (g *Graph) SumRows(x *Tensor) *Tensor {
	r, c := x.Rows(), x.Cols()
	rec := g.needs(x)
	y := g.out(rec, r)
	for i := range r {
		y.Data[i] = float32(sum(x.Data[i*c : (i+1)*c]))
	}
	if rec {
		n := g.record(backSumRows, y)
		n.a = x
	}
	return y
}

func backSumRows(g *Graph, n *node) {
	c := n.a.Cols()
	for i, d := range n.out.Grad {
		gr := n.a.Grad[i*c : (i+1)*c]
		for j := range gr {
			gr[j] += d
		}
	}
}

// SumCols returns the sum of each column: x (R×C) → (C), torch x.sum(0).
func (g *Graph) SumCols(x *Tensor) *Tensor {
	c := x.Cols()
	rec := g.needs(x)
	y := g.out(rec, c)
	acc := g.f64(c)
	for i := 0; i < len(x.Data); i += c {
		for j, v := range x.Data[i : i+c] {
			acc[j] += float64(v)
		}
	}
	for j, v := range acc {
		y.Data[j] = float32(v)
	}
	if rec {
		n := g.record(backSumCols, y)
		n.a = x
	}
	return y
}

func backSumCols(g *Graph, n *node) {
	c := n.a.Cols()
	for i := 0; i < len(n.a.Grad); i += c {
		addTo(n.out.Grad, n.a.Grad[i:i+c])
	}
}

// f64 returns a zeroed float64 scratch slice (not kept across ops).
func (g *Graph) f64(n int) []float64 {
	if cap(g.scratch) < n {
		g.grow(8*cap(g.scratch), 8*n)
		g.scratch = make([]float64, n)
	}
	s := g.scratch[:n]
	clear(s)
	return s
}

// RowNorm returns the L2 norm of each row: x (R×C) → (R).
func (g *Graph) RowNorm(x *Tensor) *Tensor {
	r, c := x.Rows(), x.Cols()
	rec := g.needs(x)
	y := g.out(rec, r)
	for i := range r {
		xr := x.Data[i*c : (i+1)*c]
		y.Data[i] = float32(math.Sqrt(dot(xr, xr)))
	}
	if rec {
		n := g.record(backRowNorm, y)
		n.a = x
	}
	return y
}

func backRowNorm(g *Graph, n *node) {
	c := n.a.Cols()
	for i, d := range n.out.Grad {
		if nv := n.out.Data[i]; nv != 0 {
			axpy(d/nv, n.a.Data[i*c:(i+1)*c], n.a.Grad[i*c:(i+1)*c])
		}
	}
}

// ColNorm returns the L2 norm of each column: x (R×C) → (C).
func (g *Graph) ColNorm(x *Tensor) *Tensor {
	c := x.Cols()
	rec := g.needs(x)
	y := g.out(rec, c)
	acc := g.f64(c)
	for i := 0; i < len(x.Data); i += c {
		for j, v := range x.Data[i : i+c] {
			acc[j] += float64(v) * float64(v)
		}
	}
	for j, v := range acc {
		y.Data[j] = float32(math.Sqrt(v))
	}
	if rec {
		n := g.record(backColNorm, y)
		n.a = x
	}
	return y
}

func backColNorm(g *Graph, n *node) {
	c := n.a.Cols()
	for i := 0; i < len(n.a.Data); i += c {
		xr, gr := n.a.Data[i:i+c], n.a.Grad[i:i+c]
		for j, nv := range n.out.Data {
			if nv != 0 {
				gr[j] += n.out.Grad[j] * xr[j] / nv
			}
		}
	}
}

// unary returns the output tensor of an element-wise op on x, recorded
// with its backward when x needs a gradient; the op fills its data.
func (g *Graph) unary(x *Tensor, back func(*Graph, *node)) *Tensor {
	rec := g.needs(x)
	y := g.out(rec, x.Shape...)
	if rec {
		g.record(back, y).a = x
	}
	return y
}

// Exp returns eˣ element-wise.
func (g *Graph) Exp(x *Tensor) *Tensor {
	y := g.unary(x, backExp)
	for i, v := range x.Data {
		y.Data[i] = exp32(v)
	}
	return y
}

func backExp(g *Graph, n *node) { mulAdd(n.a.Grad, n.out.Grad, n.out.Data) }

// Log returns the natural logarithm element-wise.
func (g *Graph) Log(x *Tensor) *Tensor {
	y := g.unary(x, backLog)
	for i, v := range x.Data {
		y.Data[i] = float32(math.Log(float64(v)))
	}
	return y
}

func backLog(g *Graph, n *node) {
	for i, d := range n.out.Grad {
		n.a.Grad[i] += d / n.a.Data[i]
	}
}

// Sqrt returns √x element-wise.
func (g *Graph) Sqrt(x *Tensor) *Tensor {
	y := g.unary(x, backSqrt)
	for i, v := range x.Data {
		y.Data[i] = float32(math.Sqrt(float64(v)))
	}
	return y
}

func backSqrt(g *Graph, n *node) {
	for i, d := range n.out.Grad {
		n.a.Grad[i] += d * 0.5 / n.out.Data[i]
	}
}

// ReLU returns max(x, 0) element-wise.
func (g *Graph) ReLU(x *Tensor) *Tensor {
	rec := g.needs(x)
	y := g.out(rec, x.Shape...)
	kernels.Relu(y.Data, x.Data)
	if rec {
		n := g.record(backReLU, y)
		n.a = x
	}
	return y
}

func backReLU(g *Graph, n *node) { kernels.ReluBackwardAdd(n.a.Grad, n.out.Data, n.out.Grad) }

// Tanh returns tanh(x) element-wise.
func (g *Graph) Tanh(x *Tensor) *Tensor {
	y := g.unary(x, backTanh)
	for i, v := range x.Data {
		y.Data[i] = float32(math.Tanh(float64(v)))
	}
	return y
}

func backTanh(g *Graph, n *node) {
	for i, d := range n.out.Grad {
		t := n.out.Data[i]
		n.a.Grad[i] += d * (1 - t*t)
	}
}

// GELU is the tanh approximation x·½(1+tanh(√(2/π)(x+0.044715x³))), as in
// GPT-2 and torch's gelu(approximate="tanh"); cheaper than the erf form.
func (g *Graph) GELU(x *Tensor) *Tensor {
	rec := g.needs(x)
	y := g.out(rec, x.Shape...)
	geluRow(y.Data, x.Data)
	if rec {
		n := g.record(backGELU, y)
		n.a = x
	}
	return y
}

func backGELU(g *Graph, n *node) {
	geluBackRow(n.a.Grad, n.out.Grad, n.a.Data, g.scratch32(len(n.a.Data)))
}

// Softmax over the last axis.
func (g *Graph) Softmax(x *Tensor) *Tensor {
	c := x.Cols()
	rec := g.needs(x)
	y := g.out(rec, x.Shape...)
	for i := 0; i < len(x.Data); i += c {
		softmaxRow(y.Data[i:i+c], x.Data[i:i+c])
	}
	if rec {
		n := g.record(backSoftmax, y)
		n.a = x
	}
	return y
}

func backSoftmax(g *Graph, n *node) {
	c := n.a.Cols()
	for i := 0; i < len(n.out.Data); i += c {
		softmaxBackRow(n.a.Grad[i:i+c], n.out.Grad[i:i+c], n.out.Data[i:i+c], 1)
	}
}

// softmaxBackRow: dx += s·y⊙(dy − Σ dy⊙y).
func softmaxBackRow(dx, dy, y []float32, s float32) {
	d := float32(dot(dy, y))
	for j, v := range y {
		dx[j] += s * v * (dy[j] - d)
	}
}

// LogSoftmax over the last axis.
func (g *Graph) LogSoftmax(x *Tensor) *Tensor {
	c := x.Cols()
	rec := g.needs(x)
	y := g.out(rec, x.Shape...)
	for i := 0; i < len(x.Data); i += c {
		lse := logSumExpRow(x.Data[i : i+c])
		for j, v := range x.Data[i : i+c] {
			y.Data[i+j] = v - lse
		}
	}
	if rec {
		n := g.record(backLogSoftmax, y)
		n.a = x
	}
	return y
}

func backLogSoftmax(g *Graph, n *node) {
	c := n.a.Cols()
	for i := 0; i < len(n.out.Data); i += c {
		dy := n.out.Grad[i : i+c]
		s := float32(sum(dy))
		for j, v := range n.out.Data[i : i+c] {
			n.a.Grad[i+j] += dy[j] - exp32(v)*s
		}
	}
}
