package nn

import (
	"fmt"
	"math"

	"peftbench/kernels"
)

// MatMul returns op(a)·op(b) for 2-D a and b, where op transposes its
// operand when the flag says so: MatMul(x, w, false, true) is x·wᵀ.
func (g *Graph) MatMul(a, b *Tensor, transA, transB bool) *Tensor {
	m, k, n := mmDims("MatMul", a, b, transA, transB)
	rec := g.needs(a, b)
	y := g.out(rec, m, n)
	kernels.Sgemm(transA, transB, m, n, k, 1, a.Data, a.Cols(), b.Data, b.Cols(), 0, y.Data, n)
	if rec {
		nd := g.record(backMatMul, y)
		nd.a, nd.b = a, b
		nd.i0, nd.i1, nd.i2 = m, k, n
		nd.i3 = flags(transA, transB)
	}
	return y
}

func flags(ta, tb bool) int {
	f := 0
	if ta {
		f |= 1
	}
	if tb {
		f |= 2
	}
	return f
}

func mmDims(op string, a, b *Tensor, ta, tb bool) (m, k, n int) {
	if len(a.Shape) != 2 || len(b.Shape) != 2 {
		panic(fmt.Sprintf("nn: %s: want 2-D operands, have %v and %v", op, a.Shape, b.Shape))
	}
	m, k = a.Shape[0], a.Shape[1]
	if ta {
		m, k = k, m
	}
	k2, n := b.Shape[0], b.Shape[1]
	if tb {
		k2, n = n, k2
	}
	if k != k2 {
		panic(fmt.Sprintf("nn: %s: inner dimensions differ: %v (trans %v) · %v (trans %v)", op, a.Shape, ta, b.Shape, tb))
	}
	return m, k, n
}

func backMatMul(g *Graph, nd *node) {
	ta, tb := nd.i3&1 != 0, nd.i3&2 != 0
	mmBack(nd.a.Data, nd.a.Grad, nd.b.Data, nd.b.Grad, nd.out.Grad, nd.i0, nd.i1, nd.i2, ta, tb,
		nd.a.Cols(), nd.b.Cols(), nd.i2)
}

// mmBack adds the gradients of C = op(A)·op(B) (m×k · k×n) to dA and dB
// (either may be nil), given dC with row stride ldc.
func mmBack(a, da, b, db, dc []float32, m, k, n int, ta, tb bool, lda, ldb, ldc int) {
	if da != nil {
		if !ta { // dA (m×k) += dC · op(B)ᵀ
			kernels.Sgemm(false, !tb, m, k, n, 1, dc, ldc, b, ldb, 1, da, lda)
		} else { // dA (k×m) += op(B) · dCᵀ
			kernels.Sgemm(tb, true, k, m, n, 1, b, ldb, dc, ldc, 1, da, lda)
		}
	}
	if db != nil {
		if !tb { // dB (k×n) += op(A)ᵀ · dC
			kernels.Sgemm(!ta, false, k, n, m, 1, a, lda, dc, ldc, 1, db, ldb)
		} else { // dB (n×k) += dCᵀ · op(A)
			kernels.Sgemm(true, ta, n, k, m, 1, dc, ldc, a, lda, 1, db, ldb)
		}
	}
}

// BatchMatMul returns op(a[i])·op(b[i]) for each i of 3-D a (B×·×·) and b.
func (g *Graph) BatchMatMul(a, b *Tensor, transA, transB bool) *Tensor {
	if len(a.Shape) != 3 || len(b.Shape) != 3 || a.Shape[0] != b.Shape[0] {
		panic(fmt.Sprintf("nn: BatchMatMul: want 3-D operands with equal batch, have %v and %v", a.Shape, b.Shape))
	}
	bs := a.Shape[0]
	m, k, n := mmDims("BatchMatMul", &Tensor{Shape: a.Shape[1:]}, &Tensor{Shape: b.Shape[1:]}, transA, transB)
	rec := g.needs(a, b)
	y := g.out(rec, bs, m, n)
	sa, sb := m*k, k*n
	for i := range bs {
		kernels.Sgemm(transA, transB, m, n, k, 1, a.Data[i*sa:], a.Cols(), b.Data[i*sb:], b.Cols(), 0, y.Data[i*m*n:], n)
	}
	if rec {
		nd := g.record(backBatchMatMul, y)
		nd.a, nd.b = a, b
		nd.i0, nd.i1, nd.i2 = m, k, n
		nd.i3 = flags(transA, transB)
	}
	return y
}

func backBatchMatMul(g *Graph, nd *node) {
	ta, tb := nd.i3&1 != 0, nd.i3&2 != 0
	m, k, n := nd.i0, nd.i1, nd.i2
	a, b := nd.a, nd.b
	sa, sb := m*k, k*n
	for i := range a.Shape[0] {
		var da, db []float32
		if a.Grad != nil {
			da = a.Grad[i*sa:]
		}
		if b.Grad != nil {
			db = b.Grad[i*sb:]
		}
		mmBack(a.Data[i*sa:], da, b.Data[i*sb:], db, nd.out.Grad[i*m*n:], m, k, n, ta, tb, a.Cols(), b.Cols(), n)
	}
}

// CausalSelfAttention computes multi-head scaled dot-product attention with
// a causal mask. q, k and v are (batch·seq × dim) with heads side by side
// along dim (head h owns columns [h·dim/heads, (h+1)·dim/heads)); the
// result has the same layout, ready for the output projection.
func (g *Graph) CausalSelfAttention(q, k, v *Tensor, batch, seq, heads int) *Tensor {
	mustSame("CausalSelfAttention", q, k)
	mustSame("CausalSelfAttention", q, v)
	d := q.Cols()
	if q.Rows() != batch*seq || heads <= 0 || d%heads != 0 {
		panic(fmt.Sprintf("nn: CausalSelfAttention: shape %v with batch %d, seq %d, heads %d", q.Shape, batch, seq, heads))
	}
	hd := d / heads
	rec := g.needs(q, k, v)
	y := g.out(rec, batch*seq, d)
	probs := g.buf(batch * heads * seq * seq)
	scale := float32(1 / math.Sqrt(float64(hd)))
	parallelFor(batch*heads, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/heads, bh%heads
			off := b*seq*d + h*hd
			p := probs[bh*seq*seq : (bh+1)*seq*seq]
			// S = scale·Q·Kᵀ, then a causal softmax per row.
			kernels.Sgemm(false, true, seq, seq, hd, scale, q.Data[off:], d, k.Data[off:], d, 0, p, seq)
			for i := range seq {
				row := p[i*seq : (i+1)*seq]
				softmaxRow(row[:i+1], row[:i+1])
				clear(row[i+1:])
			}
			kernels.Sgemm(false, false, seq, hd, seq, 1, p, seq, v.Data[off:], d, 0, y.Data[off:], d)
		}
	})
	if rec {
		n := g.record(backAttention, y)
		n.a, n.b, n.c = q, k, v
		n.i0, n.i1, n.i2 = batch, seq, heads
		n.aux = probs
		n.f0 = scale
	}
	return y
}

func backAttention(g *Graph, n *node) {
	q, k, v := n.a, n.b, n.c
	batch, seq, heads := n.i0, n.i1, n.i2
	d := q.Cols()
	hd := d / heads
	dy := n.out.Grad
	// Scratch shared by every layer's backward: each dP is written in
	// full before it is read.
	dps := g.scratch32(batch * heads * seq * seq)
	parallelFor(batch*heads, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/heads, bh%heads
			off := b*seq*d + h*hd
			p := n.aux[bh*seq*seq : (bh+1)*seq*seq]
			dp := dps[bh*seq*seq : (bh+1)*seq*seq]
			if v.Grad != nil { // dV += Pᵀ·dY
				kernels.Sgemm(true, false, seq, hd, seq, 1, p, seq, dy[off:], d, 1, v.Grad[off:], d)
			}
			if q.Grad == nil && k.Grad == nil {
				continue
			}
			// dP = dY·Vᵀ, then dS = scale·P⊙(dP − Σ dP⊙P) in place.
			kernels.Sgemm(false, true, seq, seq, hd, 1, dy[off:], d, v.Data[off:], d, 0, dp, seq)
			for i := range seq {
				row, pr := dp[i*seq:(i+1)*seq], p[i*seq:(i+1)*seq]
				s := float32(dot(row[:i+1], pr[:i+1]))
				for j := 0; j <= i; j++ {
					row[j] = n.f0 * pr[j] * (row[j] - s)
				}
				clear(row[i+1:])
			}
			if q.Grad != nil { // dQ += dS·K
				kernels.Sgemm(false, false, seq, hd, seq, 1, dp, seq, k.Data[off:], d, 1, q.Grad[off:], d)
			}
			if k.Grad != nil { // dK += dSᵀ·Q
				kernels.Sgemm(true, false, seq, hd, seq, 1, dp, seq, q.Data[off:], d, 1, k.Grad[off:], d)
			}
		}
	})
}

// Linear returns x·wᵀ + b for x (N×In), w (Out×In) and b (Out) or nil: the
// affine map of a linear layer as one op (the bias initialises the output
// that the product accumulates into).
func (g *Graph) Linear(x, w, b *Tensor) *Tensor {
	m, k, n := mmDims("Linear", x, w, false, true)
	if b != nil {
		mustVec("Linear", b, n, "bias")
	}
	rec := g.needs(x, w, b)
	y := g.out(rec, m, n)
	beta := float32(0)
	if b != nil {
		for i := range m {
			copy(y.Data[i*n:(i+1)*n], b.Data)
		}
		beta = 1
	}
	kernels.Sgemm(false, true, m, n, k, 1, x.Data, k, w.Data, k, beta, y.Data, n)
	if rec {
		nd := g.record(backLinear, y)
		nd.a, nd.b, nd.c = x, w, b
		nd.i0, nd.i1, nd.i2 = m, k, n
	}
	return y
}

func backLinear(g *Graph, nd *node) {
	x, w, b := nd.a, nd.b, nd.c
	m, k, n := nd.i0, nd.i1, nd.i2
	mmBack(x.Data, x.Grad, w.Data, w.Grad, nd.out.Grad, m, k, n, false, true, k, k, n)
	if b != nil && b.Grad != nil {
		kernels.SumRows(b.Grad, nd.out.Grad, n)
	}
}

// LowRankLinear returns x·wᵀ + b + s·(xa·aᵀ)·bmᵀ for x and xa (N×In), w
// (Out×In), b (Out) or nil, a (r×In) and bm (Out×r): a linear layer with a
// low-rank update (LoRA), as one op. xa is the input of the update path (x
// itself, or x after dropout). The product xa·aᵀ (N×r) is the only
// intermediate; the update accumulates straight into the output, and
// backward writes each gradient with one GEMM, so no N×Out temporary and no
// dense ΔW is formed.
func (g *Graph) LowRankLinear(x, w, b, xa, a, bm *Tensor, s float32) *Tensor {
	m, k, n := mmDims("LowRankLinear", x, w, false, true)
	mustSame("LowRankLinear", x, xa)
	if b != nil {
		mustVec("LowRankLinear", b, n, "bias")
	}
	if len(a.Shape) != 2 || a.Shape[1] != k || len(bm.Shape) != 2 || bm.Shape[0] != n || bm.Shape[1] != a.Shape[0] {
		panic(fmt.Sprintf("nn: LowRankLinear: factors %v and %v for a %d→%d layer", a.Shape, bm.Shape, k, n))
	}
	r := a.Shape[0]
	rec := g.needs(x, w, b, xa, a, bm)
	y := g.out(rec, m, n)
	beta := float32(0)
	if b != nil {
		for i := range m {
			copy(y.Data[i*n:(i+1)*n], b.Data)
		}
		beta = 1
	}
	kernels.Sgemm(false, true, m, n, k, 1, x.Data, k, w.Data, k, beta, y.Data, n)
	xr := g.buf(m * r)
	kernels.Sgemm(false, true, m, r, k, 1, xa.Data, k, a.Data, k, 0, xr, r)
	kernels.Sgemm(false, true, m, n, r, s, xr, r, bm.Data, r, 1, y.Data, n)
	if rec {
		nd := g.record(backLowRankLinear, y)
		nd.a, nd.b, nd.c = x, w, b
		nd.list = append(nd.list[:0], xa, a, bm)
		nd.aux = xr
		nd.i0, nd.i1, nd.i2, nd.i3 = m, k, n, r
		nd.f0 = s
	}
	return y
}

func backLowRankLinear(g *Graph, nd *node) {
	x, w, b := nd.a, nd.b, nd.c
	xa, a, bm := nd.list[0], nd.list[1], nd.list[2]
	m, k, n, r, s := nd.i0, nd.i1, nd.i2, nd.i3, nd.f0
	dy, xr := nd.out.Grad, nd.aux
	mmBack(x.Data, x.Grad, w.Data, w.Grad, dy, m, k, n, false, true, k, k, n)
	if b != nil && b.Grad != nil {
		kernels.SumRows(b.Grad, dy, n)
	}
	if bm.Grad != nil { // dB += s·dYᵀ·(xa·Aᵀ)
		kernels.Sgemm(true, false, n, r, m, s, dy, n, xr, r, 1, bm.Grad, r)
	}
	if a.Grad == nil && xa.Grad == nil {
		return
	}
	dxr := g.scratch32(m * r) // d(xa·Aᵀ) = s·dY·B
	kernels.Sgemm(false, false, m, r, n, s, dy, n, bm.Data, r, 0, dxr, r)
	if a.Grad != nil { // dA += d(xa·Aᵀ)ᵀ·xa
		kernels.Sgemm(true, false, r, k, m, 1, dxr, r, xa.Data, k, 1, a.Grad, k)
	}
	if xa.Grad != nil { // dxa += d(xa·Aᵀ)·A
		kernels.Sgemm(false, false, m, k, r, 1, dxr, r, a.Data, k, 1, xa.Grad, k)
	}
}

// MatMulAdd returns c + alpha·op(a)·op(b) for 2-D tensors, one op: the
// update path of low-rank adapters, y + s·(x·Aᵀ)·Bᵀ, without a separate
// scale and add.
func (g *Graph) MatMulAdd(c, a, b *Tensor, transA, transB bool, alpha float32) *Tensor {
	m, k, n := mmDims("MatMulAdd", a, b, transA, transB)
	if len(c.Shape) != 2 || c.Shape[0] != m || c.Shape[1] != n {
		panic(fmt.Sprintf("nn: MatMulAdd: c has shape %v, want [%d %d]", c.Shape, m, n))
	}
	rec := g.needs(a, b, c)
	y := g.out(rec, m, n)
	copy(y.Data, c.Data)
	kernels.Sgemm(transA, transB, m, n, k, alpha, a.Data, a.Cols(), b.Data, b.Cols(), 1, y.Data, n)
	if rec {
		nd := g.record(backMatMulAdd, y)
		nd.a, nd.b, nd.c = a, b, c
		nd.i0, nd.i1, nd.i2 = m, k, n
		nd.i3 = flags(transA, transB)
		nd.f0 = alpha
	}
	return y
}

func backMatMulAdd(g *Graph, nd *node) {
	if nd.c.Grad != nil {
		addTo(nd.out.Grad, nd.c.Grad)
	}
	ta, tb := nd.i3&1 != 0, nd.i3&2 != 0
	dc := nd.out.Grad
	if nd.f0 != 1 {
		dc = g.scratch32(len(dc))
		scaleTo(dc, nd.f0, nd.out.Grad)
	}
	mmBack(nd.a.Data, nd.a.Grad, nd.b.Data, nd.b.Grad, dc, nd.i0, nd.i1, nd.i2, ta, tb, nd.a.Cols(), nd.b.Cols(), nd.i2)
}
