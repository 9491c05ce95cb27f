package nn

import (
	"fmt"
	"math"

	"peftbench/kernels"
)

// CEChunkFloats bounds the logits block LMCrossEntropy holds at once: rows
// per chunk = max(1, CEChunkFloats / vocabulary), 16 MB of float32.
const CEChunkFloats = 1 << 22

// LMCrossEntropy returns the mean over the rows i with targets[i] ≥ 0 of
// −log softmax(h_i·wᵀ)[targets[i]], for hidden states h (N×D) and an LM
// head w (V×D, tied or not, no bias): the causal-LM loss without ever
// forming the N×V logits. Rows with a negative target (−100, the ignore
// index) are skipped; the mean is over the others, 0 if there are none.
//
// The rows are processed chunkRows at a time (0: CEChunkFloats/V): one
// GEMM gives the chunk's logits, a softmax per row gives the loss, and,
// when h or w needs a gradient, the gradient of the mean loss is formed in
// the same pass (softmax − one-hot, over the count) and multiplied back at
// once: dh into an N×D buffer, dw into a V×D one. Backward only scales
// those by the upstream gradient. Memory: one chunk of logits plus
// gradients the size of h and w (and, with several chunks, the head packed
// once for the forward GEMMs); compute: 2 GEMMs of N·V·D with a frozen
// head (3 with a trained one), as many as the unfused loss.
//
// targets must stay unchanged until Backward has run.
func (g *Graph) LMCrossEntropy(h, w *Tensor, targets []int, chunkRows int) *Tensor {
	n, d := h.Rows(), h.Cols()
	if len(w.Shape) != 2 || w.Shape[1] != d || len(targets) != n {
		panic(fmt.Sprintf("nn: LMCrossEntropy: hidden %v, head %v, %d targets", h.Shape, w.Shape, len(targets)))
	}
	v := w.Shape[0]
	active := g.intbuf(n)[:0]
	for i, t := range targets {
		if t >= v {
			panic(fmt.Sprintf("nn: LMCrossEntropy: target %d at row %d out of range [0,%d)", t, i, v))
		}
		if t >= 0 {
			active = append(active, i)
		}
	}
	rec := g.needs(h, w)
	y := g.out(rec)
	y.Data[0] = 0
	count := len(active)
	if count == 0 {
		return y
	}
	if chunkRows <= 0 {
		chunkRows = max(1, CEChunkFloats/v)
	}
	cr := min(chunkRows, count)
	hb, lb := g.buf(cr*d), g.buf(cr*v)
	var dh, dw []float32
	if rec && h.Grad != nil {
		dh = g.zbuf(n * d)
	}
	if rec && w.Grad != nil {
		dw = g.zbuf(v * d)
	}
	// With several chunks, the head is transposed into the micro-kernel's
	// panels once here rather than once per chunk (the same sums, bit for
	// bit). The backward product dL·W reads W untransposed, which packs at
	// copy speed, so it keeps packing per chunk rather than hold a second
	// V×D copy.
	var wf *kernels.PackedB
	if count > cr {
		wf = kernels.PackB(true, cr, v, d, w.Data, d, g.buf(kernels.PackedBSize(cr, v, d)))
	}
	inv := float32(1 / float64(count))
	rowLoss := g.f64(cr)
	var loss float64
	for c0 := 0; c0 < count; c0 += cr {
		m := min(cr, count-c0)
		rows := active[c0 : c0+m]
		for i, r := range rows {
			copy(hb[i*d:(i+1)*d], h.Data[r*d:(r+1)*d])
		}
		if wf != nil {
			kernels.SgemmPackedB(false, m, 1, hb, d, wf, 0, lb, v)
		} else {
			kernels.Sgemm(false, true, m, v, d, 1, hb, d, w.Data, d, 0, lb, v)
		}
		parallelFor(m, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row := lb[i*v : (i+1)*v]
				t := targets[rows[i]]
				mx := kernels.Max(row)
				top := 0
				for j, x := range row {
					if x == mx {
						top = j
						break
					}
				}
				xt := row[t]
				softmaxRow(row, row)
				// p[top] = 1/Σexp(x−mx), so log Σexp(x) = mx − log p[top],
				// with p[top] ≥ 1/V: no underflow.
				rowLoss[i] = float64(mx) - float64(xt) - math.Log(float64(row[top]))
				if rec {
					row[t] -= 1
					kernels.Scale(inv, row)
				}
			}
		})
		for _, l := range rowLoss[:m] {
			loss += l
		}
		if !rec {
			continue
		}
		if dw != nil { // dW += dLᵀ·H
			kernels.Sgemm(true, false, v, d, m, 1, lb, v, hb, d, 1, dw, d)
		}
		if dh != nil { // dH = dL·W, scattered back to the rows
			kernels.Sgemm(false, false, m, d, v, 1, lb, v, w.Data, d, 0, hb, d)
			for i, r := range rows {
				copy(dh[r*d:(r+1)*d], hb[i*d:(i+1)*d])
			}
		}
	}
	y.Data[0] = float32(loss / float64(count))
	if rec {
		nd := g.record(backLMCrossEntropy, y)
		nd.a, nd.b = h, w
		nd.aux, nd.aux2 = dh, dw
	}
	return y
}

func backLMCrossEntropy(g *Graph, n *node) {
	s := n.out.Grad[0]
	if n.aux != nil {
		axpy(s, n.aux, n.a.Grad)
	}
	if n.aux2 != nil {
		axpy(s, n.aux2, n.b.Grad)
	}
}
