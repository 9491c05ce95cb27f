package methods

import (
	"math"
	"slices"

	"peftbench/nn"
)

// AFLoRA is adaptive freezing of low-rank adaptation (Liu et al., ACL
// 2024), as the authors' code (github.com/zeyuliu1037/AFLoRA, glue/: the
// "elora" mode of its peft fork, CustomTrainerWFreeze and utils.Pruner)
// trains it:
//
//	y = x·W0ᵀ + b + ((drop(x)·Aᵀ) ⊙ d)·Bᵀ ⊙ b_v,   ΔW = Λ_b·B·Λ_d·A,
//
// no scaling factor. A (r×In) and B (Out×r) are trainable low-rank
// projections drawn Kaiming-uniform with torch's default gain √2 (the
// code's init_type 1: bound √(6/fan_in), fan_in In for A and r for B), d
// (r) starts at 0.1 and b_v (Out) at 0 (d_init_type 94), so ΔW = 0 at step
// 0: b_v is the factor that starts at zero. d and b_v train throughout;
// A and B train until the freezing score freezes them (SetRequiresGrad
// false: the optimiser then skips them, no decay, and backward computes no
// gradient for them).
//
// Freezing score (the code's PLATON pruner): for each element of A and B,
// I = |sign(w)·∇w| (the code's sensitivity, the gradient's magnitude; not
// AdaLoRA's |w·∇w|), averaged over windows of delta_t steps; at the first
// step of each window the previous window's mean enters the averages
// Ī ← β1·Ī + (1−β1)·I and Ū ← β2·Ū + (1−β2)·|I − Ī|, and the score is
// s = Ī·Ū. The schedule (schedule_threshold_comb) keeps a fraction
//
//	k(t) = 1 (t ≤ t_i),  (1 − (t − t_i)/(T − t_i − t_f))³,  0 (t > T − t_f)
//
// of the trainable projections' score elements: at every delta_t-th step
// of the cubic phase, and every step of the final one, the threshold is the
// ⌊N·(1 − k)⌋-th smallest of the N score elements of the projections still
// trainable, and every one of them whose mean score is below it freezes
// (so with k = 0 all freeze unless their scores tie at the maximum, e.g.
// all zero before the first window closes). Defaults are the GLUE scripts'
// (r = 4, β1 = 0.85, β2 = 0.95, delta_t = 10; initial_warmup 1 and
// final_warmup 14 of 20 epochs: t_i = 0.05, t_f = 0.7 of the steps).
//
// Conventions. t_i and t_f are fractions of the run, rounded half up to
// steps (the code counts epochs of steps). The step index t counts from 0,
// the HF Trainer's global_step when the code's training_step runs. The code
// scores and freezes between backward and clipping, and a projection it
// freezes keeps its gradient for that step's update; here BeforeStep
// scores on the clipped gradient (the hooks see no unclipped one; the
// clip's common factor per step changes the scores' step weights only) and
// AfterStep freezes, after the update, which is the code's order otherwise.
// The code freezes A and B from the start on square layers (in = out:
// DeBERTa's attention), leaving AFLoRA's freezing to the FFN; here every
// targeted layer is AFLoRA, as in the paper.
type AFLoRA struct {
	A, B    *nn.Tensor // lora_A (r×In), lora_B (Out×r): trainable until frozen
	D, BV   *nn.Tensor // lora_d (r), lora_db (Out)
	Rank    int
	Dropout float32

	rng *nn.RNG
}

// Forward computes the adapted output without forming ΔW.
func (a *AFLoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	u := g.MulRow(g.MatMul(g.Dropout(x, a.Dropout, a.rng), a.A, false, true), a.D)
	return g.Add(l.Base(g, x), g.MulRow(g.MatMul(u, a.B, false, true), a.BV))
}

// Params returns A, B, d and b_v, all with weight decay (the code decays
// every LoRA tensor). A and B stay listed once frozen; they then have no
// gradient.
func (a *AFLoRA) Params() []nn.ParamRef {
	var ps []nn.ParamRef
	for _, t := range []*nn.Tensor{a.A, a.B, a.D, a.BV} {
		ps = append(ps, nn.ParamRef{Name: t.Name, T: t, LRMul: 1, Decay: true})
	}
	return ps
}

// Merged returns W0 + Λ_b·B·Λ_d·A.
func (a *AFLoRA) Merged(l *nn.Linear) []float32 {
	w := slices.Clone(l.Weight.Data)
	r := a.Rank
	acc := make([]float64, l.In)
	for i := range l.Out {
		clear(acc)
		for p := range r {
			c := float64(a.B.Data[i*r+p]) * float64(a.D.Data[p])
			if c == 0 {
				continue
			}
			for j, v := range a.A.Data[p*l.In : (p+1)*l.In] {
				acc[j] += c * float64(v)
			}
		}
		row := w[i*l.In : (i+1)*l.In]
		for j := range row {
			row[j] = float32(float64(row[j]) + float64(a.BV.Data[i])*acc[j])
		}
	}
	return w
}

type afloraMethod struct{}

func (afloraMethod) Info() Info {
	return Info{
		Name: "aflora", Family: "vector-scaling", HasRank: true,
		Paper: Paper{Title: "AFLoRA: Adaptive Freezing of Low Rank Adaptation in Parameter Efficient Fine-Tuning of Large Models",
			Authors: "Liu et al.", Year: 2024, ArXiv: "2403.13269"},
		Summary: "ΔW = Λ_b·B·Λ_d·A; A, B trainable until a smoothed-sensitivity freezing score freezes them on a cubic schedule, then only d and b train",
		// delta_t = 1 and a short run's schedule freeze projections within
		// the conformance suite's 6 steps (after its gradient check).
		AltOptions: map[string]any{"rank": 8, "delta_t": 1, "tinit": 0.2, "tfinal": 0.5, "d_initial": 0.5, "beta1": 0.5},
		Options: []Option{
			intOpt("rank", 4, 1, "rank r of the projections A and B"),
			floatOpt("d_initial", 0.1, nil, nil, "initial value of every element of d (b_v starts at 0)"),
			{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
			floatOpt("tinit", 0.05, fptr(0), fptr(1), "fraction of steps before freezing starts (initial_warmup)"),
			floatOpt("tfinal", 0.7, fptr(0), fptr(1), "fraction of final steps in which every projection freezes (final_warmup)"),
			intOpt("delta_t", 10, 1, "steps per score window; freezing decisions every delta_t steps of the cubic phase (deltaT)"),
			{Name: "beta1", Kind: "float", Default: 0.85, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "EMA factor of the sensitivity"},
			{Name: "beta2", Kind: "float", Default: 0.95, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "EMA factor of the uncertainty (> 0)"},
		},
		ParamsFormula: "Σ r·(in+out) + r + out (at the start; A and B freeze during training)",
	}
}

func (afloraMethod) CheckLayers(o Options, layers []LayerShape) error {
	if o.Float("beta2") <= 0 {
		return optionError("aflora", "beta2", "must be > 0")
	}
	if o.Float("tinit")+o.Float("tfinal") >= 1 {
		return optionError("aflora", "tfinal", "tinit + tfinal must leave steps for the cubic phase (sum < 1)")
	}
	return checkRankFits("aflora", "rank", o.Int("rank"), layers)
}

func (afloraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	at := &afloraAttachment{layers: layers, o: o, score: map[*nn.Tensor]*afloraScore{}, FrozenAt: map[string]int{}}
	for _, l := range layers {
		a := &AFLoRA{
			A: nn.Param(l.Name+".lora_A.weight", r, l.In), B: nn.Param(l.Name+".lora_B.weight", l.Out, r),
			D: nn.Param(l.Name+".lora_d", r), BV: nn.Param(l.Name+".lora_db", l.Out),
			Rank: r, Dropout: float32(o.Float("dropout")),
		}
		for _, t := range []*nn.Tensor{a.A, a.B} {
			bound := float32(math.Sqrt(6 / float64(t.Shape[1])))
			rng.FillUniform(t, -bound, bound)
		}
		for i := range a.D.Data {
			a.D.Data[i] = float32(o.Float("d_initial"))
		}
		at.adapters = append(at.adapters, a)
	}
	for i, l := range layers {
		l.Adapter = at.adapters[i]
	}
	return at, nil
}

func (afloraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	r := int64(o.Int("rank"))
	var n int64
	for _, l := range layers {
		n += r*int64(l.In+l.Out) + r + int64(l.Out)
	}
	return n
}

type afloraAttachment struct {
	layers   []*nn.Linear
	adapters []*AFLoRA
	o        Options
	score    map[*nn.Tensor]*afloraScore
	pending  []*nn.Tensor
	// FrozenAt is the step (from 0) whose update was each frozen
	// projection's last, by tensor name.
	FrozenAt map[string]int
	// Keep is the schedule's fraction k(t) at the latest step.
	Keep float64
}

// afloraScore is one projection's windowed sensitivity and its averages.
type afloraScore struct{ ipt, expIpt, expUnc []float32 }

func (at *afloraAttachment) Layers() []*nn.Linear { return at.layers }

func (at *afloraAttachment) Params() []nn.ParamRef {
	var ps []nn.ParamRef
	for _, a := range at.adapters {
		ps = append(ps, a.Params()...)
	}
	return ps
}

func (at *afloraAttachment) SetTraining(rng *nn.RNG) {
	for _, a := range at.adapters {
		a.rng = childRNG(rng, a.D.Name)
	}
}

// projections returns the A and B tensors still trainable, in layer order.
func (at *afloraAttachment) projections() []*nn.Tensor {
	var ts []*nn.Tensor
	for _, a := range at.adapters {
		for _, t := range []*nn.Tensor{a.A, a.B} {
			if t.Grad != nil {
				ts = append(ts, t)
			}
		}
	}
	return ts
}

// afloraKeep is the fraction of score elements kept trainable at step t
// (from 0) of total, and whether t is a freezing step (the code's
// schedule_threshold_comb).
func afloraKeep(t, total, tinit, tfinal, deltaT int) (float64, bool) {
	switch {
	case t <= tinit:
		return 1, false
	case t > total-tfinal:
		return 0, true
	}
	mul := 1 - float64(t-tinit)/float64(total-(tinit+tfinal))
	return mul * mul * mul, t%deltaT == 0
}

// BeforeStep updates the scores of the trainable projections from this
// step's (clipped) gradients and picks those to freeze after the update.
func (at *afloraAttachment) BeforeStep(step, total int) {
	ts := at.projections()
	if len(ts) == 0 {
		return
	}
	deltaT := at.o.Int("delta_t")
	// float32 arithmetic with the factors rounded from float64, as torch
	// multiplies a float32 tensor by a Python float.
	beta1, beta2 := at.o.Float("beta1"), at.o.Float("beta2")
	b1, c1, b2, c2 := float32(beta1), float32(1-beta1), float32(beta2), float32(1-beta2)
	local := step % deltaT
	for _, t := range ts {
		s := at.score[t]
		if s == nil {
			n := t.Size()
			s = &afloraScore{make([]float32, n), make([]float32, n), make([]float32, n)}
			at.score[t] = s
		}
		for i, w := range t.Data {
			g := t.Grad[i]
			cur := float32(0)
			if w != 0 {
				cur = float32(math.Abs(float64(g)))
			}
			if local == 0 {
				s.expIpt[i] = b1*s.expIpt[i] + c1*s.ipt[i]
				s.expUnc[i] = b2*s.expUnc[i] + c2*float32(math.Abs(float64(s.ipt[i]-s.expIpt[i])))
				s.ipt[i] = cur
			} else {
				s.ipt[i] = (s.ipt[i]*float32(local) + cur) / float32(local+1)
			}
		}
	}
	tinit := int(math.Round(at.o.Float("tinit") * float64(total)))
	tfinal := int(math.Round(at.o.Float("tfinal") * float64(total)))
	keep, freeze := afloraKeep(step, total, tinit, tfinal, deltaT)
	at.Keep = keep
	if !freeze {
		return
	}
	var all []float32
	means := make([]float64, len(ts))
	for k, t := range ts {
		s := at.score[t]
		var sum float64
		for i := range s.expIpt {
			v := s.expIpt[i] * s.expUnc[i]
			all = append(all, v)
			sum += float64(v)
		}
		means[k] = sum / float64(len(s.expIpt))
	}
	kth := int(float64(len(all)) * (1 - keep))
	if kth < 1 {
		return // torch.kthvalue needs k ≥ 1; nothing is below the 0th
	}
	slices.Sort(all)
	threshold := float64(all[kth-1])
	for k, t := range ts {
		if means[k] < threshold {
			at.pending = append(at.pending, t)
		}
	}
}

// AfterStep freezes the projections BeforeStep picked, after their last
// update.
func (at *afloraAttachment) AfterStep(step, total int) {
	for _, t := range at.pending {
		t.SetRequiresGrad(false)
		at.FrozenAt[t.Name] = step
	}
	at.pending = at.pending[:0]
}

func init() { Register("aflora", afloraMethod{}) }
