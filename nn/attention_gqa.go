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
	hd := q.Cols() / heads
	return g.attention(q, k, v, attnGeom{batch: batch, seq: seq, heads: heads, kvHeads: kvHeads, hd: hd,
		ldq: q.Cols(), ldk: k.Cols(), ldv: v.Cols()}, scale)
}

// FusedCausalAttention is GroupedCausalAttention with kvHeads = heads on a
// fused projection qkv (batch·seq × 3·dim) laid out [q | k | v], three
// blocks of dim columns (GPT-2's c_attn), read in place: no q, k, v
// copies and no gradients of their own, which for GPT-2 124M at 8 × 256
// saves 450 MB a step. Same sums as slicing then GroupedCausalAttention.
func (g *Graph) FusedCausalAttention(qkv *Tensor, batch, seq, heads int, scale float32) *Tensor {
	d := qkv.Cols() / 3
	if heads <= 0 || qkv.Cols() != 3*d || d%heads != 0 || qkv.Rows() != batch*seq {
		panic(fmt.Sprintf("nn: FusedCausalAttention: qkv %v with batch %d, seq %d, heads %d", qkv.Shape, batch, seq, heads))
	}
	return g.attention(qkv, qkv, qkv, attnGeom{batch: batch, seq: seq, heads: heads, kvHeads: heads, hd: d / heads,
		offK: d, offV: 2 * d, ldq: 3 * d, ldk: 3 * d, ldv: 3 * d}, scale)
}

// attnGeom places q, k and v in their tensors: head h of q in row r is
// at q.Data[r·ldq + offQ + h·hd :][:hd], and so on.
type attnGeom struct {
	batch, seq, heads, kvHeads, hd int
	offQ, offK, offV               int
	ldq, ldk, ldv                  int
}

func (g *Graph) attention(q, k, v *Tensor, a attnGeom, scale float32) *Tensor {
	batch, seq, heads, hd := a.batch, a.seq, a.heads, a.hd
	rep := heads / a.kvHeads
	dy := heads * hd
	rec := g.needs(q, k, v)
	y := g.out(rec, batch*seq, dy)
	probs := g.buf(batch * heads * seq * seq)
	parallelFor(batch*heads, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/heads, bh%heads
			qo, ko, vo := b*seq*a.ldq+a.offQ+h*hd, b*seq*a.ldk+a.offK+(h/rep)*hd, b*seq*a.ldv+a.offV+(h/rep)*hd
			p := probs[bh*seq*seq : (bh+1)*seq*seq]
			kernels.Sgemm(false, true, seq, seq, hd, scale, q.Data[qo:], a.ldq, k.Data[ko:], a.ldk, 0, p, seq)
			for i := range seq {
				row := p[i*seq : (i+1)*seq]
				softmaxRow(row[:i+1], row[:i+1])
				clear(row[i+1:])
			}
			kernels.Sgemm(false, false, seq, hd, seq, 1, p, seq, v.Data[vo:], a.ldv, 0, y.Data[b*seq*dy+h*hd:], dy)
		}
	})
	if rec {
		n := g.record(backGroupedAttention, y)
		n.a, n.b, n.c = q, k, v
		n.ids = append(g.intbuf(11)[:0], a.batch, a.seq, a.heads, a.kvHeads, a.hd, a.offQ, a.offK, a.offV, a.ldq, a.ldk, a.ldv)
		n.aux = probs
		n.f0 = scale
	}
	return y
}

func backGroupedAttention(g *Graph, n *node) {
	q, k, v := n.a, n.b, n.c
	x := n.ids
	a := attnGeom{batch: x[0], seq: x[1], heads: x[2], kvHeads: x[3], hd: x[4], offQ: x[5], offK: x[6], offV: x[7], ldq: x[8], ldk: x[9], ldv: x[10]}
	batch, seq, heads, kvHeads, hd := a.batch, a.seq, a.heads, a.kvHeads, a.hd
	rep := heads / kvHeads
	dyw := heads * hd
	dy := n.out.Grad
	// Scratch, not arena: every layer's backward reuses the same buffer
	// (each dP is written in full before it is read).
	dps := g.scratch32(batch * kvHeads * seq * seq)
	// One worker per (sequence, kv head): the q heads of a group add into
	// the same dK and dV columns, so they run in order, in one goroutine.
	// (With one fused tensor, the workers' q, k and v columns are still
	// disjoint.)
	parallelFor(batch*kvHeads, func(lo, hi int) {
		for bj := lo; bj < hi; bj++ {
			b, j := bj/kvHeads, bj%kvHeads
			ko, vo := b*seq*a.ldk+a.offK+j*hd, b*seq*a.ldv+a.offV+j*hd
			dp := dps[bj*seq*seq : (bj+1)*seq*seq]
			for h := j * rep; h < (j+1)*rep; h++ {
				qo, yo := b*seq*a.ldq+a.offQ+h*hd, b*seq*dyw+h*hd
				p := n.aux[(b*heads+h)*seq*seq : (b*heads+h+1)*seq*seq]
				if v.Grad != nil { // dV += Pᵀ·dY
					kernels.Sgemm(true, false, seq, hd, seq, 1, p, seq, dy[yo:], dyw, 1, v.Grad[vo:], a.ldv)
				}
				if q.Grad == nil && k.Grad == nil {
					continue
				}
				// dP = dY·Vᵀ, then dS = scale·P⊙(dP − Σ dP⊙P) in place.
				kernels.Sgemm(false, true, seq, seq, hd, 1, dy[yo:], dyw, v.Data[vo:], a.ldv, 0, dp, seq)
				for i := range seq {
					row, pr := dp[i*seq:(i+1)*seq], p[i*seq:(i+1)*seq]
					s := float32(dot(row[:i+1], pr[:i+1]))
					for c := 0; c <= i; c++ {
						row[c] = n.f0 * pr[c] * (row[c] - s)
					}
					clear(row[i+1:])
				}
				if q.Grad != nil { // dQ += dS·K
					kernels.Sgemm(false, false, seq, hd, seq, 1, dp, seq, k.Data[ko:], a.ldk, 1, q.Grad[qo:], a.ldq)
				}
				if k.Grad != nil { // dK += dSᵀ·Q
					kernels.Sgemm(true, false, seq, hd, seq, 1, dp, seq, q.Data[qo:], a.ldq, 1, k.Grad[ko:], a.ldk)
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
