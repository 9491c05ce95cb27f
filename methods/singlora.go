package methods

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// SingLoRA is low-rank adaptation with a single matrix (Bensaïd et al.
// 2025):
//
//	ΔW = (α/r)·u(t)·A[:Out]·A[:In]ᵀ,  y = x·W0ᵀ + b + (α/r)·u(t)·(drop(x)·A[:In])·A[:Out]ᵀ,
//
// with one trainable A of max(Out, In)×r. On a square layer ΔW = s·u·A·Aᵀ,
// the paper's symmetric update; on a non-square one the paper (§4.4)
// truncates A to A* = its first min(Out, In) rows, and both orientations
// give ΔW = A[:Out]·A[:In]ᵀ (Out > In: A·A*ᵀ; In > Out: A*·Aᵀ). That is the
// orientation of the public re-implementations (kyegomez/SingLoRA's
// truncated A·Aᵀ for In > Out, and peft-singlora's A·A*ᵀ for Out > In,
// which fixes the former's transposed In < Out branch); the authors' own
// code is not public.
//
// The ramp u(t) = min(t/T, 1) makes ΔW = 0 at t = 0 although A is random:
// t counts the optimiser steps taken (AfterStep sets t = step+1), so the
// forward pass of step 0 runs at u = 0 (its gradient for A is zero and
// AdamW moves A by weight decay only) and evaluation after a run of N
// steps uses u(N). The re-implementations count t up in every training
// forward pass instead, so their first step runs at u = 1/T. T is the
// ramp option times the run's steps, rounded half up, at least 1 (a
// fraction, as AdaLoRA's tinit here, so that a sweep's short runs reach
// u = 1; the re-implementations default to T = 1000 steps).
//
// Init: A is Kaiming-uniform with LoRA's fan-in, U(±1/√In) (the card's
// "LoRA's A init"). The re-implementations call torch's kaiming_uniform_
// on the max×r tensor, whose fan-in is r (bound 1/√r): A·Aᵀ then has
// diagonal entries near 1/3 and a spectral norm near max(Out, In)/(3r),
// far above W0's, which no ramp makes harmless; with fan-in In, A·Aᵀ has
// the scale of LoRA's B·A after training.
type SingLoRA struct {
	A     *nn.Tensor // max(Out, In)×r
	Rank  int
	Scale float32 // α/r
	// U is the ramp u(t) of the current step (the attachment sets it).
	U       float32
	Dropout float32

	rng *nn.RNG
}

// Forward computes x·W0ᵀ + b + s·u·(drop(x)·A[:In])·A[:Out]ᵀ in one fused
// op, without forming ΔW.
func (s *SingLoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	xd := g.Dropout(x, s.Dropout, s.rng)
	ain := g.Transpose(g.SliceRows(s.A, 0, l.In)) // r×In
	aout := g.SliceRows(s.A, 0, l.Out)            // Out×r
	return g.LowRankLinear(x, l.Weight, l.Bias, xd, ain, aout, s.Scale*s.U)
}

// Params returns A, with weight decay.
func (s *SingLoRA) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: s.A.Name, T: s.A, LRMul: 1, Decay: true}}
}

// Merged returns W0 + s·u·A[:Out]·A[:In]ᵀ.
func (s *SingLoRA) Merged(l *nn.Linear) []float32 {
	w := append([]float32(nil), l.Weight.Data...)
	r := s.Rank
	ain := make([]float32, r*l.In) // A[:In]ᵀ
	for j := range l.In {
		for p := range r {
			ain[p*l.In+j] = s.A.Data[j*r+p]
		}
	}
	addLowRank(w, s.A.Data[:l.Out*r], ain, l.Out, r, l.In, float64(s.Scale)*float64(s.U))
	return w
}

type singLoRAMethod struct{}

func (singLoRAMethod) Info() Info {
	return Info{
		Name: "singlora", Family: "lora", HasRank: true,
		Paper: Paper{Title: "SingLoRA: Low Rank Adaptation Using a Single Matrix",
			Authors: "Bensaïd et al.", Year: 2025, ArXiv: "2507.05566"},
		Summary: "ΔW = (α/r)·u(t)·A·Aᵀ with one A (max(out,in)×r, truncated on the short side); u(t) = min(t/T, 1) ramps from 0",
		Options: []Option{
			intOpt("rank", 8, 1, "rank r of A"),
			floatOpt("alpha", 8, fptr(0), nil, "scaling numerator α (s = α/r); a number or a multiple of the rank (\"2r\")"),
			{Name: "ramp", Kind: "float", Default: 0.1, Min: fptr(0), Max: fptr(1),
				Doc: "ramp length T as a fraction of the run's steps, rounded half up, at least 1 step (u(t) = min(t/T, 1))"},
			{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
		},
		AltOptions:    map[string]any{"rank": 4, "alpha": 16, "ramp": 0.5},
		ParamsFormula: "Σ r·max(in, out)",
	}
}

func (singLoRAMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	if r <= 0 {
		return nil, fmt.Errorf("methods: singlora: rank %d, want > 0", r)
	}
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		a := nn.Param(l.Name+".singlora_A", max(l.Out, l.In), r)
		rng.KaimingUniform(a, l.In)
		return &SingLoRA{A: a, Rank: r, Scale: float32(o.Float("alpha") / float64(r)),
			Dropout: float32(o.Float("dropout"))}, nil
	})
	if err != nil {
		return nil, err
	}
	return &singLoRAAttachment{layerAttachment: at, ramp: o.Float("ramp")}, nil
}

func (singLoRAMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += int64(o.Int("rank")) * int64(max(l.In, l.Out))
	}
	return n
}

// singLoRAAttachment keeps the step count t and sets every adapter's u(t).
type singLoRAAttachment struct {
	*layerAttachment
	ramp float64
	t    int
}

// rampSteps is T for a run of total steps.
func rampSteps(ramp float64, total int) int {
	return max(1, int(math.Floor(ramp*float64(total)+0.5)))
}

// AfterStep sets t to the steps taken and each adapter's u = min(t/T, 1).
func (at *singLoRAAttachment) AfterStep(step, total int) {
	at.t = step + 1
	u := min(float64(at.t)/float64(rampSteps(at.ramp, total)), 1)
	for _, a := range at.adapters {
		a.(*SingLoRA).U = float32(u)
	}
}

// SetTraining gives each adapter its own dropout stream.
func (at *singLoRAAttachment) SetTraining(rng *nn.RNG) {
	for _, a := range at.adapters {
		s := a.(*SingLoRA)
		s.rng = childRNG(rng, s.A.Name)
	}
}

func init() { Register("singlora", singLoRAMethod{}) }
