package tasks

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// Evaluate returns the mean cross-entropy and the argmax accuracy of m over
// the rows of bs whose label is not −1. A batch with Classes set is scored
// over those logit columns alone (softmax and argmax restricted to them). g
// is reset before each batch; pass a graph with NoGrad set (nil makes one).
func Evaluate(g *nn.Graph, m Model, bs []Batch) (loss, acc float64) {
	if g == nil {
		g = &nn.Graph{NoGrad: true}
	}
	var n, correct int
	var scratch []float32
	for _, b := range bs {
		g.Reset()
		lg := m.Logits(g, b)
		c := lg.Cols()
		checkRows(lg, b)
		checkClasses(b, c)
		for i, lab := range b.Labels {
			if lab < 0 {
				continue
			}
			var row []float32
			row, lab, scratch = restrict(lg.Data[i*c:(i+1)*c], b.Classes, lab, scratch)
			lse, arg := logSumExp(row)
			loss += lse - float64(row[lab])
			if arg == lab {
				correct++
			}
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return loss / float64(n), float64(correct) / float64(n)
}

// Forgetting compares tuned with base on the rows of bs whose label is not
// −1 (Kalajdzievski 2024, arXiv 2401.05605: the cross-entropy of the tuned
// model against the base model's predictions). It returns
//
//	kl = mean over rows of Σ_c p_base(c)·(log p_base(c) − log p_tuned(c))
//	ce = mean over rows of −Σ_c p_base(c)·log p_tuned(c)
//
// ce − kl is the base's own entropy, so kl is the part that fine-tuning
// caused: it is exactly 0 when tuned computes the same logits as base. For
// a batch with Classes set, p_base and p_tuned are the softmax over those
// logit columns alone (each renormalised over them), the distributions
// Evaluate scores.
func Forgetting(g *nn.Graph, tuned, base Model, bs []Batch) (kl, ce float64) {
	if g == nil {
		g = &nn.Graph{NoGrad: true}
	}
	var n int
	var pb, lb []float64
	var bscratch, tscratch []float32
	for _, b := range bs {
		g.Reset()
		bl := base.Logits(g, b)
		tl := tuned.Logits(g, b)
		checkRows(bl, b)
		checkRows(tl, b)
		c := bl.Cols()
		if tl.Cols() != c {
			panic(fmt.Sprintf("tasks: Forgetting: tuned has %d classes, base %d", tl.Cols(), c))
		}
		checkClasses(b, c)
		k := c
		if b.Classes != nil {
			k = len(b.Classes)
		}
		if len(pb) != k {
			pb, lb = make([]float64, k), make([]float64, k)
		}
		for i, lab := range b.Labels {
			if lab < 0 {
				continue
			}
			var br, tr []float32
			br, _, bscratch = restrict(bl.Data[i*c:(i+1)*c], b.Classes, lab, bscratch)
			tr, _, tscratch = restrict(tl.Data[i*c:(i+1)*c], b.Classes, lab, tscratch)
			blse, _ := logSumExp(br)
			tlse, _ := logSumExp(tr)
			var rk, rc float64
			for j := range k {
				lb[j] = float64(br[j]) - blse
				pb[j] = math.Exp(lb[j])
				lt := float64(tr[j]) - tlse
				rk += pb[j] * (lb[j] - lt)
				rc -= pb[j] * lt
			}
			kl += rk
			ce += rc
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return kl / float64(n), ce / float64(n)
}

// Summary returns the generic metrics of a fine-tuned model: target_loss,
// target_accuracy, retain_loss, retain_accuracy (each also with a
// _before suffix: the base model's), forgetting (KL, see Forgetting) and
// forgetting_ce, plus the instance's extras.
func Summary(g *nn.Graph, tuned, base Model, in Instance) map[string]float64 {
	s := map[string]float64{}
	s["target_loss"], s["target_accuracy"] = Evaluate(g, tuned, in.Target())
	s["retain_loss"], s["retain_accuracy"] = Evaluate(g, tuned, in.Retain())
	s["target_loss_before"], s["target_accuracy_before"] = Evaluate(g, base, in.Target())
	s["retain_loss_before"], s["retain_accuracy_before"] = Evaluate(g, base, in.Retain())
	s["forgetting"], s["forgetting_ce"] = Forgetting(g, tuned, base, in.Retain())
	if ex, ok := in.(Extraser); ok {
		for k, v := range ex.Extras(g, tuned, base) {
			s[k] = v
		}
	}
	return s
}

// GenericMetrics are the names Summary always reports.
var GenericMetrics = []string{
	"target_loss", "target_accuracy", "retain_loss", "retain_accuracy",
	"target_loss_before", "target_accuracy_before", "retain_loss_before", "retain_accuracy_before",
	"forgetting", "forgetting_ce",
}

// checkClasses panics when b.Classes names a column outside [0, cols) or
// twice: a programming error of the task.
func checkClasses(b Batch, cols int) {
	seen := map[int]bool{}
	for _, k := range b.Classes {
		if k < 0 || k >= cols || seen[k] {
			panic(fmt.Sprintf("tasks: batch classes %v: bad column %d of %d", b.Classes, k, cols))
		}
		seen[k] = true
	}
	if b.Classes != nil && len(b.Classes) == 0 {
		panic("tasks: batch classes is empty (nil means every column)")
	}
}

// restrict returns the logits of row over classes (row itself when classes
// is nil) and the position of lab among them, reusing scratch. A label
// outside classes panics: task-incremental evaluation scores each row among
// its own task's classes.
func restrict(row []float32, classes []int, lab int, scratch []float32) ([]float32, int, []float32) {
	if classes == nil {
		return row, lab, scratch
	}
	scratch = scratch[:0]
	pos := -1
	for j, k := range classes {
		scratch = append(scratch, row[k])
		if k == lab {
			pos = j
		}
	}
	if pos < 0 {
		panic(fmt.Sprintf("tasks: label %d is not among the batch's classes %v", lab, classes))
	}
	return scratch, pos, scratch
}

func checkRows(lg *nn.Tensor, b Batch) {
	if lg.Rows() != len(b.Labels) {
		panic(fmt.Sprintf("tasks: %d logits rows for %d labels", lg.Rows(), len(b.Labels)))
	}
}

// logSumExp returns log Σ exp(row) in float64 and the index of the largest
// entry (the first one on ties).
func logSumExp(row []float32) (float64, int) {
	arg := 0
	for j, v := range row {
		if v > row[arg] {
			arg = j
		}
	}
	m := float64(row[arg])
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s), arg
}
