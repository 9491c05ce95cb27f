package methods

import (
	"cmp"
	"math"
	"slices"

	"peftbench/nn"
)

// AdaLoRA adapts with an SVD-shaped update whose rank budget is allocated
// across layers while training:
//
//	y = x·W0ᵀ + b + s·((drop(x)·Qᵀ) ⊙ λ)·Pᵀ,   ΔW = s·P·diag(λ)·Q,
//
// P (Out×r₀) and Q (r₀×In) start N(0, 0.02²) and λ at 0 (so ΔW = 0), and
// s = α/(r₀ + 10⁻⁵) (HF PEFT's scaling/(ranknum + 1e-5)). Each step AfterStep scores
// every triplet (Pᵢ, λᵢ, Qᵢ) by the smoothed sensitivity Ī·Ū of its
// parameters (I = |w·∇w|, Ī and Ū exponential averages with β1, β2 = 0.85)
// and zeroes λ outside the top b(t) triplets over all layers, where the
// budget falls from r₀ to r per layer on the cubic schedule
//
//	b(t) = b_T + (b_0 − b_T)·(1 − (t − t_i)/(T − t_i − t_f))³.
//
// Regularizer adds orth_reg·mean(‖QQᵀ − I‖_F, ‖PᵀP − I‖_F).
//
// Conventions that differ from HF PEFT, each so that a sweep's short runs
// get a schedule and a trial is one config: HF PEFT's tinit and tfinal are
// steps (default 0 of a long run, total_step given); here they are
// fractions of the run's steps (10% warm-up at full budget, 20% at the
// final budget by default), rounded half up to steps. HF PEFT's examples
// call update_and_allocate(global_step) with global_step counted from 0;
// AfterStep counts t from 1 (t = step + 1), so the schedule's t ≤ tinit
// warm-up covers exactly tinit optimiser steps. Masking keeps the budget
// highest-scoring triplets (HF masks every score ≤ the k-th smallest, which
// differs only on exact ties).
type AdaLoRA struct {
	P, E, Q *nn.Tensor // lora_B (Out×r₀), lora_E (r₀), lora_A (r₀×In)
	Rank    int        // initial rank r₀
	Scale   float32
	Dropout float32

	rng *nn.RNG
}

// Forward computes the adapted output without forming ΔW.
func (a *AdaLoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	u := g.MulRow(g.MatMul(g.Dropout(x, a.Dropout, a.rng), a.Q, false, true), a.E)
	return g.Add(l.Base(g, x), g.Scale(g.MatMul(u, a.P, false, true), a.Scale))
}

// Params returns Q, λ and P.
func (a *AdaLoRA) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: a.Q.Name, T: a.Q, LRMul: 1, Decay: true},
		{Name: a.E.Name, T: a.E, LRMul: 1, Decay: true},
		{Name: a.P.Name, T: a.P, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + s·P·diag(λ)·Q.
func (a *AdaLoRA) Merged(l *nn.Linear) []float32 {
	r := a.Rank
	pe := make([]float32, l.Out*r)
	for i := range l.Out {
		for p := range r {
			pe[i*r+p] = a.P.Data[i*r+p] * a.E.Data[p]
		}
	}
	w := append([]float32(nil), l.Weight.Data...)
	addLowRank(w, pe, a.Q.Data, l.Out, r, l.In, float64(a.Scale))
	return w
}

// ActiveRank is the number of non-zero λ.
func (a *AdaLoRA) ActiveRank() int {
	n := 0
	for _, v := range a.E.Data {
		if v != 0 {
			n++
		}
	}
	return n
}

type adaLoRAMethod struct{}

func (adaLoRAMethod) Info() Info {
	return Info{
		Name: "adalora", Family: "rank-adaptive", HasRank: true,
		Paper:      Paper{Title: "AdaLoRA: Adaptive Budget Allocation for Parameter-Efficient Fine-Tuning", Authors: "Zhang et al.", Year: 2023, ArXiv: "2303.10512"},
		Summary:    "ΔW = P·Λ·Q; importance-scored global rank budget on a cubic schedule, orthogonality penalty",
		AltOptions: map[string]any{"rank": 4, "init_rank": 8, "orth_reg": 0.1},
		Options: []Option{
			intOpt("rank", 8, 1, "target average rank r per layer at the end of the schedule (target_r)"),
			fromRank(intOpt("init_rank", 0, 0, "initial rank r₀ per layer (init_r); 0 means ⌈1.5·r⌉ (12 for r = 8, HF PEFT's default)")),
			floatOpt("alpha", 8, fptr(0), nil, "scaling numerator α; s = α/(r₀ + 1e-5) as in HF PEFT; a number or a multiple of the rank (\"2r\")"),
			{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
			stringOpt("init", "gaussian", []string{"gaussian"}, "P, Q ~ N(0, 0.02²), λ = 0"),
			floatOpt("tinit", 0.1, fptr(0), fptr(1), "fraction of steps at the initial budget before pruning starts"),
			floatOpt("tfinal", 0.2, fptr(0), fptr(1), "fraction of final steps at the target budget"),
			intOpt("delta_t", 1, 1, "steps between budget reallocations (deltaT)"),
			{Name: "beta1", Kind: "float", Default: 0.85, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "EMA factor of the sensitivity"},
			{Name: "beta2", Kind: "float", Default: 0.85, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "EMA factor of the uncertainty"},
			floatOpt("orth_reg", 0.5, fptr(0), nil, "weight of the orthogonality regulariser"),
		},
		ParamsFormula: "Σ r₀·(in+out+1)",
	}
}

func initRank(o Options) int {
	if r0 := o.Int("init_rank"); r0 > 0 {
		return r0
	}
	return (3*o.Int("rank") + 1) / 2
}

func (adaLoRAMethod) CheckLayers(o Options, layers []LayerShape) error {
	r0 := initRank(o)
	if r0 < o.Int("rank") {
		return optionError("adalora", "init_rank", "below the target rank")
	}
	if o.Float("tinit")+o.Float("tfinal") >= 1 {
		return optionError("adalora", "tfinal", "tinit + tfinal must leave steps for pruning (sum < 1)")
	}
	return checkRankFits("adalora", "init_rank", r0, layers)
}

func (adaLoRAMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r0 := initRank(o)
	at := &adaLoRAAttachment{layers: layers, o: o, target: o.Int("rank") * len(layers), init: r0 * len(layers),
		ema: map[*nn.Tensor]*adaEMA{}}
	for _, l := range layers {
		a := &AdaLoRA{
			P: nn.Param(l.Name+".lora_B.weight", l.Out, r0), E: nn.Param(l.Name+".lora_E", r0),
			Q: nn.Param(l.Name+".lora_A.weight", r0, l.In), Rank: r0,
			Scale: float32(o.Float("alpha") / (float64(r0) + 1e-5)), Dropout: float32(o.Float("dropout")),
		}
		rng.FillNormal(a.Q, 0, 0.02)
		rng.FillNormal(a.P, 0, 0.02)
		l.Adapter = a
		at.adapters = append(at.adapters, a)
	}
	return at, nil
}

func (adaLoRAMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	r0 := int64(initRank(o))
	var n int64
	for _, l := range layers {
		n += r0 * int64(l.In+l.Out+1)
	}
	return n
}

type adaLoRAAttachment struct {
	layers       []*nn.Linear
	adapters     []*AdaLoRA
	o            Options
	init, target int // total budgets (triplets over all layers)
	ema          map[*nn.Tensor]*adaEMA
	// Budget is the total rank budget after the latest AfterStep.
	budget int
}

type adaEMA struct{ ipt, unc []float32 }

func (at *adaLoRAAttachment) Layers() []*nn.Linear { return at.layers }

func (at *adaLoRAAttachment) Params() []nn.ParamRef {
	var ps []nn.ParamRef
	for _, a := range at.adapters {
		ps = append(ps, a.Params()...)
	}
	return ps
}

func (at *adaLoRAAttachment) SetTraining(rng *nn.RNG) {
	for _, a := range at.adapters {
		a.rng = childRNG(rng, a.E.Name)
	}
}

// Regularizer is orth_reg times the mean over P and Q of every layer of
// ‖QQᵀ − I‖_F and ‖PᵀP − I‖_F.
func (at *adaLoRAAttachment) Regularizer(g *nn.Graph) *nn.Tensor {
	w := float32(at.o.Float("orth_reg"))
	if w == 0 {
		return nil
	}
	var sum *nn.Tensor
	add := func(t *nn.Tensor) {
		if sum == nil {
			sum = t
		} else {
			sum = g.Add(sum, t)
		}
	}
	for _, a := range at.adapters {
		add(frobeniusFromI(g, g.MatMul(a.Q, a.Q, false, true)))
		add(frobeniusFromI(g, g.MatMul(a.P, a.P, true, false)))
	}
	return g.Scale(sum, w/float32(2*len(at.adapters)))
}

// frobeniusFromI returns ‖c − I‖_F for a square c.
func frobeniusFromI(g *nn.Graph, c *nn.Tensor) *nn.Tensor {
	n := c.Rows()
	eye := g.Zeros(n, n)
	for i := range n {
		eye.Data[i*n+i] = 1
	}
	d := g.Sub(c, eye)
	return g.Sqrt(g.Sum(g.Mul(d, d)))
}

// adaBudget is the total budget after t of total steps and whether the
// budget is enforced at t (HF PEFT's budget_schedule, t counted from 1).
func adaBudget(t, total, tinit, tfinal, deltaT, init, target int) (int, bool) {
	switch {
	case t <= tinit:
		return init, false
	case t > total-tfinal || total-tfinal-tinit <= 0:
		return target, true
	}
	mul := 1 - float64(t-tinit)/float64(total-tfinal-tinit)
	b := int(float64(init-target)*mul*mul*mul) + target
	return b, t%deltaT == 0 || t == total-tfinal
}

// steps converts the fractional tinit and tfinal to steps of a run.
func (at *adaLoRAAttachment) steps(total int) (tinit, tfinal int) {
	return int(math.Round(at.o.Float("tinit") * float64(total))), int(math.Round(at.o.Float("tfinal") * float64(total)))
}

// Budget returns the total rank budget at step t (from 1) of total.
func (at *adaLoRAAttachment) Budget(t, total int) int {
	ti, tf := at.steps(total)
	b, _ := adaBudget(t, total, ti, tf, at.o.Int("delta_t"), at.init, at.target)
	return b
}

// AfterStep updates the sensitivity averages (before the final phase) and
// masks λ to the budget of this step.
func (at *adaLoRAAttachment) AfterStep(step, total int) {
	t := step + 1
	ti, tf := at.steps(total)
	if t < total-tf {
		at.updateImportance()
	}
	b, mask := adaBudget(t, total, ti, tf, at.o.Int("delta_t"), at.init, at.target)
	at.budget = b
	if mask {
		at.maskToBudget(b)
	}
}

func (at *adaLoRAAttachment) updateImportance() {
	b1, b2 := float32(at.o.Float("beta1")), float32(at.o.Float("beta2"))
	for _, p := range at.Params() {
		t := p.T
		e := at.ema[t]
		if e == nil {
			e = &adaEMA{ipt: make([]float32, t.Size()), unc: make([]float32, t.Size())}
			at.ema[t] = e
		}
		for i, w := range t.Data {
			ipt := float32(math.Abs(float64(w * t.Grad[i])))
			e.ipt[i] = b1*e.ipt[i] + (1-b1)*ipt
			e.unc[i] = b2*e.unc[i] + (1-b2)*float32(math.Abs(float64(ipt-e.ipt[i])))
		}
	}
}

// score returns Ī·Ū of element i of t (0 before any update).
func (at *adaLoRAAttachment) score(t *nn.Tensor, i int) float64 {
	e := at.ema[t]
	if e == nil {
		return 0
	}
	return float64(e.ipt[i]) * float64(e.unc[i])
}

// maskToBudget keeps the budget highest-scoring triplets over all layers
// (ties to the earlier layer and index) and zeroes the other λ.
func (at *adaLoRAAttachment) maskToBudget(budget int) {
	type trip struct {
		layer, i int
		s        float64
	}
	var ts []trip
	for k, a := range at.adapters {
		in, out, r := len(a.Q.Data)/a.Rank, len(a.P.Data)/a.Rank, a.Rank
		for i := range r {
			var sq, sp float64
			for j := range in {
				sq += at.score(a.Q, i*in+j)
			}
			for j := range out {
				sp += at.score(a.P, j*r+i)
			}
			ts = append(ts, trip{k, i, at.score(a.E, i) + sq/float64(in) + sp/float64(out)})
		}
	}
	slices.SortStableFunc(ts, func(x, y trip) int { return cmp.Compare(y.s, x.s) })
	for _, t := range ts[min(budget, len(ts)):] {
		at.adapters[t.layer].E.Data[t.i] = 0
	}
}

func init() { Register("adalora", adaLoRAMethod{}) }
