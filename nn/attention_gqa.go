package nn

import (
	"fmt"

	"peftbench/kernels"
)

// GroupedCausalAttention computes causal scaled dot-product attention with
// grouped-query heads (GQA): q is (batch·seq × heads·hd), k and v are
// (batch·seq × kvHeads·hd), heads side by side along the columns, and kv
// head j serves q heads j·nRep … (j+1)·nRep−1 with nRep = heads/kvHeads
// (transformers' repeat_kv, a repeat_interleave on the head axis). With
// kvHeads = heads it is plain multi-head attention. Scores are multiplied
// by scale (1/√hd in every family here) before the causal softmax. The
// result has q's layout, ready for the output projection.
func (g *Graph) GroupedCausalAttention(q, k, v *Tensor, batch, seq, heads, kvHeads int, scale float32) *Tensor {
	mustSame("GroupedCausalAttention", k, v)
	if heads <= 0 || kvHeads <= 0 || heads%kvHeads != 0 || q.Cols()%heads != 0 ||
		q.Rows() != batch*seq || k.Rows() != batch*seq || k.Cols() != kvHeads*(q.Cols()/heads) {
		panic(fmt.Sprintf("nn: GroupedCausalAttention: q %v, k %v with batch %d, seq %d, heads %d/%d",
			q.Shape, k.Shape, batch, seq, heads, kvHeads))
	}
	dq, dk := q.Cols(), k.Cols()
	hd, rep := dq/heads, heads/kvHeads
	rec := g.needs(q, k, v)
	y := g.out(rec, batch*seq, dq)
	probs := g.buf(batch * heads * seq * seq)
	parallelFor(batch*heads, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/heads, bh%heads
			qo, ko := b*seq*dq+h*hd, b*seq*dk+(h/rep)*hd
			p := probs[bh*seq*seq : (bh+1)*seq*seq]
			kernels.Sgemm(false, true, seq, seq, hd, scale, q.Data[qo:], dq, k.Data[ko:], dk, 0, p, seq)
			for i := range seq {
				row := p[i*seq : (i+1)*seq]
				softmaxRow(row[:i+1], row[:i+1])
				clear(row[i+1:])
			}
			kernels.Sgemm(false, false, seq, hd, seq, 1, p, seq, v.Data[ko:], dk, 0, y.Data[qo:], dq)
		}
	})
	if rec {
		n := g.record(backGroupedAttention, y)
		n.a, n.b, n.c = q, k, v
		n.i0, n.i1, n.i2, n.i3 = batch, seq, heads, kvHeads
		n.aux = probs
		n.f0 = scale
	}
	return y
}

func backGroupedAttention(g *Graph, n *node) {
	q, k, v := n.a, n.b, n.c
	batch, seq, heads, kvHeads := n.i0, n.i1, n.i2, n.i3
	dq, dk := q.Cols(), k.Cols()
	hd, rep := dq/heads, heads/kvHeads
	dy := n.out.Grad
	// Scratch, not arena: every layer's backward reuses the same buffer
	// (each dP is written in full before it is read).
	dps := g.scratch32(batch * kvHeads * seq * seq)
	// One worker per (sequence, kv head): the q heads of a group add into
	// the same dK and dV columns, so they run in order, in one goroutine.
	parallelFor(batch*kvHeads, func(lo, hi int) {
		for bj := lo; bj < hi; bj++ {
			b, j := bj/kvHeads, bj%kvHeads
			ko := b*seq*dk + j*hd
			dp := dps[bj*seq*seq : (bj+1)*seq*seq]
			for h := j * rep; h < (j+1)*rep; h++ {
				qo := b*seq*dq + h*hd
				p := n.aux[(b*heads+h)*seq*seq : (b*heads+h+1)*seq*seq]
				if v.Grad != nil { // dV += Pᵀ·dY
					kernels.Sgemm(true, false, seq, hd, seq, 1, p, seq, dy[qo:], dq, 1, v.Grad[ko:], dk)
				}
				if q.Grad == nil && k.Grad == nil {
					continue
				}
				// dP = dY·Vᵀ, then dS = scale·P⊙(dP − Σ dP⊙P) in place.
				kernels.Sgemm(false, true, seq, seq, hd, 1, dy[qo:], dq, v.Data[ko:], dk, 0, dp, seq)
				for i := range seq {
					row, pr := dp[i*seq:(i+1)*seq], p[i*seq:(i+1)*seq]
					s := float32(dot(row[:i+1], pr[:i+1]))
					for c := 0; c <= i; c++ {
						row[c] = n.f0 * pr[c] * (row[c] - s)
					}
					clear(row[i+1:])
				}
				if q.Grad != nil { // dQ += dS·K
					kernels.Sgemm(false, false, seq, hd, seq, 1, dp, seq, k.Data[ko:], dk, 1, q.Grad[qo:], dq)
				}
				if k.Grad != nil { // dK += dSᵀ·Q
					kernels.Sgemm(true, false, seq, hd, seq, 1, dp, seq, q.Data[qo:], dq, 1, k.Grad[ko:], dk)
				}
			}
		}
	})
}

// GatherCols returns the columns idx of x: y[r][j] = x[r][idx[j]] (a
// column permutation or selection, e.g. GPT-NeoX's per-head fused q|k|v
// split). idx must stay unchanged until Backward has run; repeated indices
// add their gradients.
func (g *Graph) GatherCols(x *Tensor, idx []int) *Tensor {
	r, c := x.Rows(), x.Cols()
	for _, j := range idx {
		if j < 0 || j >= c {
			panic(fmt.Sprintf("nn: GatherCols: column %d of %d", j, c))
		}
	}
	w := len(idx)
	rec := g.needs(x)
	y := g.out(rec, r, w)
	for i := range r {
		xr, yr := x.Data[i*c:(i+1)*c], y.Data[i*w:(i+1)*w]
		for o, j := range idx {
			yr[o] = xr[j]
		}
	}
	if rec {
		n := g.record(backGatherCols, y)
		n.a, n.ids = x, idx
	}
	return y
}

func backGatherCols(g *Graph, n *node) {
	c, w := n.a.Cols(), len(n.ids)
	for i := range n.a.Rows() {
		gx, dy := n.a.Grad[i*c:(i+1)*c], n.out.Grad[i*w:(i+1)*w]
		for o, j := range n.ids {
			gx[j] += dy[o]
		}
	}
}
