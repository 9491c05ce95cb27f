package tasks

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// Evaluate returns the mean cross-entropy and the argmax accuracy of m over
// the rows of bs whose label is not −1. g is reset before each batch; pass
// a graph with NoGrad set (nil makes one).
func Evaluate(g *nn.Graph, m Model, bs []Batch) (loss, acc float64) {
	if g == nil {
		g = &nn.Graph{NoGrad: true}
	}
	var n, correct int
	for _, b := range bs {
		g.Reset()
		lg := m.Logits(g, b)
		c := lg.Cols()
		checkRows(lg, b)
		for i, lab := range b.Labels {
			if lab < 0 {
				continue
			}
			row := lg.Data[i*c : (i+1)*c]
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
// caused: it is exactly 0 when tuned computes the same logits as base.
func Forgetting(g *nn.Graph, tuned, base Model, bs []Batch) (kl, ce float64) {
	if g == nil {
		g = &nn.Graph{NoGrad: true}
	}
	var n int
	var pb, lb []float64
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
		if len(pb) != c {
			pb, lb = make([]float64, c), make([]float64, c)
		}
		for i, lab := range b.Labels {
			if lab < 0 {
				continue
			}
			br := bl.Data[i*c : (i+1)*c]
			tr := tl.Data[i*c : (i+1)*c]
			blse, _ := logSumExp(br)
			tlse, _ := logSumExp(tr)
			var rk, rc float64
			for j := range c {
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
