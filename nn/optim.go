package nn

import (
	"fmt"
	"math"

	"peftbench/kernels"
)

// Optimizer updates parameters from their gradients. lr is the base
// learning rate of this step; each ParamRef's LRMul scales it.
type Optimizer interface {
	Step(params []ParamRef, lr float32)
}

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter), with the
// exact update of torch.optim.AdamW:
//
//	p ← p·(1 − lr·wd)            (params with Decay only)
//	m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float32
	// Meter, when set, is charged with the moments as they are allocated
	// (StateBytes).
	Meter *Meter

	t     int
	state map[*Tensor]*adamState
}

// adamState is one parameter's moments and its own step count: torch
// counts steps per parameter, so a parameter skipped in some steps (no
// gradient: LISA's frozen layers) is bias-corrected by the steps it took.
type adamState struct {
	m, v []float32
	t    int
}

// NewAdamW returns AdamW with torch's defaults: β = (0.9, 0.999), ε = 1e-8,
// weight decay 0.01.
func NewAdamW() *AdamW { return &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01} }

// Steps is the number of steps taken.
func (o *AdamW) Steps() int { return o.t }

// Reset drops every parameter's moments and step count, as a fresh
// torch.optim.AdamW would start (Chain of LoRA restarts its optimiser).
func (o *AdamW) Reset() {
	for _, s := range o.state {
		o.Meter.Add(-8 * int64(len(s.m)))
	}
	o.state = nil
}

// Step applies one update to every parameter with a gradient.
func (o *AdamW) Step(params []ParamRef, lr float32) {
	if o.state == nil {
		o.state = map[*Tensor]*adamState{}
	}
	o.t++
	for _, p := range params {
		t := p.T
		if t.Grad == nil {
			continue
		}
		s := o.state[t]
		if s == nil {
			s = &adamState{m: make([]float32, len(t.Data)), v: make([]float32, len(t.Data))}
			o.state[t] = s
			o.Meter.Add(8 * int64(len(t.Data)))
		}
		s.t++
		bc1 := 1 - math.Pow(float64(o.Beta1), float64(s.t))
		bc2 := 1 - math.Pow(float64(o.Beta2), float64(s.t))
		plr := float64(lr) * float64(lrMul(p))
		wd := float32(0)
		if p.Decay {
			wd = o.WeightDecay
		}
		kernels.AdamW(t.Data, t.Grad, s.m, s.v, float32(plr), o.Beta1, o.Beta2, o.Eps, wd, float32(bc1), float32(bc2))
	}
}

func lrMul(p ParamRef) float32 {
	if p.LRMul == 0 {
		return 1
	}
	return p.LRMul
}

// SGD is stochastic gradient descent with optional momentum and L2 weight
// decay, as torch.optim.SGD (dampening 0, no Nesterov).
type SGD struct {
	Momentum, WeightDecay float32
	// Meter, when set, is charged with the momentum buffers as they are
	// allocated (StateBytes).
	Meter *Meter

	buf map[*Tensor][]float32
}

// Step applies one update to every parameter with a gradient.
func (o *SGD) Step(params []ParamRef, lr float32) {
	for _, p := range params {
		t := p.T
		if t.Grad == nil {
			continue
		}
		plr := lr * lrMul(p)
		wd := float32(0)
		if p.Decay {
			wd = o.WeightDecay
		}
		var b []float32
		if o.Momentum != 0 {
			if o.buf == nil {
				o.buf = map[*Tensor][]float32{}
			}
			b = o.buf[t]
			if b == nil {
				b = make([]float32, len(t.Data))
				o.buf[t] = b
				o.Meter.Add(4 * int64(len(t.Data)))
				for i, gi := range t.Grad {
					b[i] = gi + wd*t.Data[i]
				}
			} else {
				for i, gi := range t.Grad {
					b[i] = o.Momentum*b[i] + gi + wd*t.Data[i]
				}
			}
			axpy(-plr, b, t.Data)
			continue
		}
		for i, gi := range t.Grad {
			t.Data[i] -= plr * (gi + wd*t.Data[i])
		}
	}
}

// Schedules lists the names LRSchedule accepts.
var Schedules = []string{"constant", "cosine", "linear"}

// LRSchedule returns the learning rate at step (0-based) of total steps:
// linear warmup from 0 over warmup steps, then constant, cosine decay to 0
// or linear decay to 0, as HF transformers' get_*_schedule_with_warmup.
// It panics on an unknown kind; validate names against Schedules.
func LRSchedule(kind string, base float64, warmup, total, step int) float64 {
	if step < warmup {
		return base * float64(step) / float64(max(1, warmup))
	}
	progress := float64(step-warmup) / float64(max(1, total-warmup))
	switch kind {
	case "constant":
		return base
	case "cosine":
		return base * max(0, 0.5*(1+math.Cos(math.Pi*progress)))
	case "linear":
		return base * max(0, float64(total-step)/float64(max(1, total-warmup)))
	}
	panic(fmt.Sprintf("nn: unknown learning-rate schedule %q (want one of %v)", kind, Schedules))
}

// GradNorm returns the global L2 norm of the gradients of params,
// accumulated in float64 in the order given, so it is deterministic.
func GradNorm(params []ParamRef) float64 {
	var s float64
	for _, p := range params {
		if p.T.Grad != nil {
			s += dot(p.T.Grad, p.T.Grad)
		}
	}
	return math.Sqrt(s)
}

// ClipGradNorm scales all gradients by max/(norm+1e-6) when their global
// norm exceeds max, as torch's clip_grad_norm_, and returns the norm before
// clipping. max ≤ 0 only measures.
func ClipGradNorm(params []ParamRef, max float32) float32 {
	norm := GradNorm(params)
	if max > 0 {
		if c := float64(max) / (norm + 1e-6); c < 1 {
			for _, p := range params {
				kernels.Scale(float32(c), p.T.Grad)
			}
		}
	}
	return float32(norm)
}

// NonFiniteError reports the first NaN or ±Inf found by CheckFinite.
type NonFiniteError struct {
	Step   int
	Tensor string
	Grad   bool // in the gradient, not the values
	Index  int
	Value  float32
}

func (e *NonFiniteError) Error() string {
	what := "value"
	if e.Grad {
		what = "gradient"
	}
	return fmt.Sprintf("nn: step %d: %s of %s[%d] is %v", e.Step, what, e.Tensor, e.Index, e.Value)
}

// CheckFinite returns a *NonFiniteError for the first non-finite value or
// gradient element among tensors, or nil.
func CheckFinite(step int, tensors ...*Tensor) error {
	for _, t := range tensors {
		if i := firstNonFinite(t.Data); i >= 0 {
			return &NonFiniteError{Step: step, Tensor: t.Name, Index: i, Value: t.Data[i]}
		}
		if i := firstNonFinite(t.Grad); i >= 0 {
			return &NonFiniteError{Step: step, Tensor: t.Name, Grad: true, Index: i, Value: t.Grad[i]}
		}
	}
	return nil
}

// CheckFiniteParams is CheckFinite over params, reporting ParamRef names.
func CheckFiniteParams(step int, params []ParamRef) error {
	for _, p := range params {
		if err := CheckFinite(step, p.T); err != nil {
			e := err.(*NonFiniteError)
			e.Tensor = p.Name
			return e
		}
	}
	return nil
}

func firstNonFinite(x []float32) int {
	for i, v := range x {
		if v-v != 0 { // NaN or ±Inf
			return i
		}
	}
	return -1
}
