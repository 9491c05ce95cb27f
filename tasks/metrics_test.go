package tasks

import (
	"math"
	"testing"

	"peftbench/nn"
)

// biasModel is a one-layer MLP 1→10 whose logits are its bias (input 0).
func biasModel(logits ...float32) *mlpModel {
	m := newMLPModel([]int{1, len(logits)}, nn.NewRNG(0, "test"))
	l := m.Linears()[0]
	clear(l.Weight.Data)
	copy(l.Bias.Data, logits)
	return m
}

func zeroBatch(labels []int, classes []int) Batch {
	return Batch{X: nn.New(len(labels), 1), N: len(labels), Labels: labels, Classes: classes}
}

// TestEvaluateClasses: a batch with Classes is scored over those logit
// columns alone: a row whose overall argmax lies outside them counts as
// correct when its label wins among them, and its loss is the
// cross-entropy of the softmax over them.
func TestEvaluateClasses(t *testing.T) {
	lg := []float32{0, 2, 1, 0, 0, 9, 9, 9, 9, 9} // argmax overall: 5; among 0–4: 1
	m := biasModel(lg...)
	low := []int{0, 1, 2, 3, 4}

	loss, acc := Evaluate(nil, m, []Batch{zeroBatch([]int{1}, nil)})
	if acc != 0 {
		t.Errorf("over every logit: accuracy %v, want 0", acc)
	}
	want := lse(lg) - 2
	if math.Abs(loss-want) > 1e-9 {
		t.Errorf("over every logit: loss %v, want %v", loss, want)
	}

	loss, acc = Evaluate(nil, m, []Batch{zeroBatch([]int{1, 2, -1}, low)})
	if acc != 0.5 {
		t.Errorf("over 0–4: accuracy %v, want 0.5 (label 1 right, 2 wrong, −1 skipped)", acc)
	}
	l5 := lse(lg[:5])
	if want := ((l5 - 2) + (l5 - 1)) / 2; math.Abs(loss-want) > 1e-9 {
		t.Errorf("over 0–4: loss %v, want %v", loss, want)
	}

	// Columns 5–9 move; the distribution over 0–4 does not: no forgetting
	// under the restriction, some over every logit.
	moved := biasModel(0, 2, 1, 0, 0, -3, 4, 0, 1, 7)
	if kl, ce := Forgetting(nil, moved, m, []Batch{zeroBatch([]int{0, 3}, low)}); kl != 0 || math.Abs(ce-entropy(lg[:5])) > 1e-9 {
		t.Errorf("over 0–4: forgetting %v (want exactly 0), ce %v (want the entropy %v)", kl, ce, entropy(lg[:5]))
	}
	if kl, _ := Forgetting(nil, moved, m, []Batch{zeroBatch([]int{0, 3}, nil)}); kl <= 0 {
		t.Errorf("over every logit: forgetting %v, want > 0", kl)
	}
}

// TestEvaluateClassesPanics: a label outside the batch's classes, or a
// class outside the logits, is a task's programming error.
func TestEvaluateClassesPanics(t *testing.T) {
	m := biasModel(0, 1, 2, 3)
	for name, b := range map[string]Batch{
		"label outside": zeroBatch([]int{3}, []int{0, 1}),
		"column 4 of 4": zeroBatch([]int{0}, []int{0, 4}),
		"repeated":      zeroBatch([]int{0}, []int{0, 0}),
		"empty":         zeroBatch([]int{0}, []int{}),
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Evaluate did not panic", name)
				}
			}()
			Evaluate(nil, m, []Batch{b})
		}()
	}
}

func lse(x []float32) float64 {
	v, _ := logSumExp(x)
	return v
}

func entropy(x []float32) float64 {
	l := lse(x)
	var h float64
	for _, v := range x {
		p := math.Exp(float64(v) - l)
		h -= p * (float64(v) - l)
	}
	return h
}
