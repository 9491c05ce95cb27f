package nn

import "fmt"

// CrossEntropy returns the mean over rows of −log softmax(logits)[label],
// logits (N×C). Rows whose label is negative are ignored (padding, prompt
// positions); the mean is over the others. It returns 0 if all are ignored.
func (g *Graph) CrossEntropy(logits *Tensor, labels []int) *Tensor {
	r, c := logits.Rows(), logits.Cols()
	if len(labels) != r {
		panic(fmt.Sprintf("nn: CrossEntropy: %d labels for %d rows", len(labels), r))
	}
	rec := g.needs(logits)
	y := g.out(rec)
	var loss float64
	count := 0
	var probs []float32
	if rec {
		probs = g.buf(len(logits.Data))
	}
	for i, lab := range labels {
		row := logits.Data[i*c : (i+1)*c]
		if rec {
			softmaxRow(probs[i*c:(i+1)*c], row)
		}
		if lab < 0 {
			continue
		}
		if lab >= c {
			panic(fmt.Sprintf("nn: CrossEntropy: label %d at row %d out of range [0,%d)", lab, i, c))
		}
		loss += float64(logSumExpRow(row)) - float64(row[lab])
		count++
	}
	if count > 0 {
		loss /= float64(count)
	}
	y.Data[0] = float32(loss)
	if rec {
		n := g.record(backCrossEntropy, y)
		n.a, n.ids, n.aux, n.i0 = logits, labels, probs, count
	}
	return y
}

func backCrossEntropy(g *Graph, n *node) {
	if n.i0 == 0 {
		return
	}
	c := n.a.Cols()
	s := n.out.Grad[0] / float32(n.i0)
	for i, lab := range n.ids {
		if lab < 0 {
			continue
		}
		gr := n.a.Grad[i*c : (i+1)*c]
		axpy(s, n.aux[i*c:(i+1)*c], gr)
		gr[lab] -= s
	}
}

// SoftCrossEntropy returns the mean over rows of −Σⱼ pⱼ·log qⱼ, where
// q = softmax(logits) and p = target, rows of probabilities treated as
// constants (no gradient flows to target). With p the base model's
// predictions this is the forgetting metric of Kalajdzievski (2024).
func (g *Graph) SoftCrossEntropy(logits, target *Tensor) *Tensor {
	mustSame("SoftCrossEntropy", logits, target)
	r, c := logits.Rows(), logits.Cols()
	rec := g.needs(logits)
	y := g.out(rec)
	var loss float64
	for i := range r {
		row, p := logits.Data[i*c:(i+1)*c], target.Data[i*c:(i+1)*c]
		lse := float64(logSumExpRow(row))
		for j, pj := range p {
			if pj != 0 {
				loss -= float64(pj) * (float64(row[j]) - lse)
			}
		}
	}
	if r > 0 {
		loss /= float64(r)
	}
	y.Data[0] = float32(loss)
	if rec {
		n := g.record(backSoftCrossEntropy, y)
		n.a, n.b = logits, target
	}
	return y
}

func backSoftCrossEntropy(g *Graph, n *node) {
	r, c := n.a.Rows(), n.a.Cols()
	s := n.out.Grad[0] / float32(r)
	q := g.scratch32(c)
	for i := range r {
		p := n.b.Data[i*c : (i+1)*c]
		softmaxRow(q, n.a.Data[i*c:(i+1)*c])
		ps := float32(sum(p))
		gr := n.a.Grad[i*c : (i+1)*c]
		for j, qj := range q {
			gr[j] += s * (qj*ps - p[j])
		}
	}
}

// scratch32 returns a float32 scratch slice for use inside one backward
// function (not kept).
func (g *Graph) scratch32(n int) []float32 {
	if cap(g.scratchF) < n {
		g.grow(4*cap(g.scratchF), 4*n)
		g.scratchF = make([]float32, n)
	}
	return g.scratchF[:n]
}
