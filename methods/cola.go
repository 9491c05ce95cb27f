package methods

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// CoLA is Chain of LoRA (Xia, Qin and Hazan 2024): residual learning by a
// chain of J LoRA modules trained one after the other. The run's steps
// split into J stages of equal length (stage j ends after step
// ⌊j·total/J + ½⌋ − 1); at the end of each stage but the last CoLA "ties a
// knot": the module's s·B_j·A_j is merged into the chain's frozen weight,
// a fresh module starts (A_{j+1} drawn like the first, B_{j+1} = 0, so the
// function does not jump) and the optimiser state is reset (the paper
// re-initialises optimisation for each new module). The layer computes
//
//	y = x·(W0 + Σ_{i<j} s·B_i·A_i)ᵀ + b + s·(drop(x)·A_jᵀ)·B_jᵀ,
//
// and Merged is W0 + Σ_i s·B_i·A_i (rank ≤ J·r). The authors merge into the
// model's weight; here W0 (l.Weight) stays untouched and the merged sum
// lives in the adapter (Wc, a frozen Out×In copy of W0 + Σ, allocated at
// the first knot), so step 0 is the base model and switching the adapter
// off gives it back. Every module's A is drawn at Attach from the
// method's stream (first modules layer by layer, as LoRA draws its A, then
// the later ones link by link), so a chain's draws do not depend on when
// its knots fall.
type CoLA struct {
	*LoRA
	// Wc is W0 + Σ of the merged modules (nil before the first knot).
	Wc *nn.Tensor
	// Links holds the initial A of every module of the chain, Links[0]
	// the first's.
	Links [][]float32
	// Link is the index of the module training now.
	Link int
}

// Forward computes x·Wcᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ with one fused op.
func (c *CoLA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	w := l.Weight
	if c.Wc != nil {
		w = c.Wc
	}
	xd := g.Dropout(x, c.Dropout, c.rng)
	return g.LowRankLinear(x, w, l.Bias, xd, c.A, c.B, c.Scale)
}

// Merged returns W0 + Σ_i s·B_i·A_i over the merged modules and the
// current one.
func (c *CoLA) Merged(l *nn.Linear) []float32 {
	var w []float32
	if c.Wc != nil {
		w = append(w, c.Wc.Data...)
	} else {
		w = append(w, l.Weight.Data...)
	}
	addLowRank(w, c.B.Data, c.A.Data, l.Out, c.Rank, l.In, float64(c.Scale))
	return w
}

// knot merges the current module into Wc and starts the next one.
func (c *CoLA) knot(l *nn.Linear) {
	if c.Wc == nil {
		c.Wc = nn.New(l.Out, l.In)
		c.Wc.Name = l.Name + ".cola_merged"
		copy(c.Wc.Data, l.Weight.Data)
	}
	addLowRank(c.Wc.Data, c.B.Data, c.A.Data, l.Out, c.Rank, l.In, float64(c.Scale))
	c.Link++
	copy(c.A.Data, c.Links[c.Link])
	clear(c.B.Data)
}

type colaAttachment struct {
	*loraAttachment
	cola  []*CoLA
	chain int
	opt   *nn.AdamW
	// Knots lists the steps after which the chain merged, for tests.
	Knots []int
}

// Optimizer keeps the trial's AdamW, whose state each knot resets.
func (at *colaAttachment) Optimizer(base nn.Optimizer) (nn.Optimizer, error) {
	adam, ok := base.(*nn.AdamW)
	if !ok {
		return nil, fmt.Errorf("methods: cola: restarts reset the optimizer state and need the trial's optimizer to be AdamW, got %T", base)
	}
	at.opt = adam
	return adam, nil
}

// colaKnot reports whether stage j of chain (1 ≤ j < chain) ends after
// step (0-based) of total: step + 1 = ⌊j·total/chain + ½⌋.
func colaKnot(step, total, chain int) bool {
	for j := 1; j < chain; j++ {
		if step+1 == int(math.Floor(float64(j)*float64(total)/float64(chain)+0.5)) {
			return true
		}
	}
	return false
}

// AfterStep ties a knot at the end of every stage but the last.
func (at *colaAttachment) AfterStep(step, total int) {
	if !colaKnot(step, total, at.chain) || step+1 >= total {
		return
	}
	for i, c := range at.cola {
		if c.Link+1 >= len(c.Links) {
			return // a chain already complete (a second stage of a continual task)
		}
		c.knot(at.layers[i])
	}
	if at.opt != nil {
		at.opt.Reset()
	}
	at.Knots = append(at.Knots, step)
}

type colaMethod struct{}

func (colaMethod) Info() Info {
	return Info{
		Name: "cola", Family: "lora", HasRank: true,
		Paper: Paper{Title: "Chain of LoRA: Efficient Fine-tuning of Language Models via Residual Learning",
			Authors: "Xia, Qin and Hazan", Year: 2024, ArXiv: "2401.04151"},
		Summary: "a chain of LoRA modules: at the end of each of cola_chain equal stages s·B·A merges into the frozen weight, " +
			"a fresh module (A random, B = 0) starts and AdamW's state resets; ΔW = Σ_j s·B_j·A_j",
		// LoRA's options at HF PEFT's defaults (r = 8, α = 8). The paper
		// ablates the chain length; J = 3 and equal stages are this
		// harness's choice, not a verified default of the authors'.
		Options: append(loraOptions(8, 8, "kaiming", "gaussian"),
			intOpt("cola_chain", 3, 1, "number J of LoRA modules in the chain (equal stages; 1 is plain LoRA)")),
		AltOptions:    map[string]any{"rank": 4, "alpha": 8, "cola_chain": 2, "init": "gaussian"},
		ParamsFormula: "Σ r·(in+out)",
	}
}

func (colaMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r, chain := o.Int("rank"), o.Int("cola_chain")
	at := &colaAttachment{loraAttachment: &loraAttachment{}, chain: chain}
	init := o.String("init")
	draw := func(a *LoRA, l *nn.Linear) error {
		switch init {
		case "kaiming":
			rng.KaimingUniform(a.A, l.In)
		case "gaussian":
			rng.FillNormal(a.A, 0, 1/float32(r))
		default:
			return fmt.Errorf("methods: cola: unknown init %q", init)
		}
		return nil
	}
	// The first module of every layer, drawn as LoRA draws its A; then
	// the later modules, link by link.
	for _, l := range layers {
		if r <= 0 || r > min(l.Out, l.In) {
			return nil, fmt.Errorf("methods: cola: %s: rank %d, want 1..%d", l.Name, r, min(l.Out, l.In))
		}
		a := NewLoRA(l, r, float32(o.Float("alpha")), rng)
		a.Dropout = float32(o.Float("dropout"))
		if init != "kaiming" {
			if err := draw(a, l); err != nil {
				return nil, err
			}
		}
		at.add(l, a)
		at.cola = append(at.cola, &CoLA{LoRA: a, Links: [][]float32{append([]float32(nil), a.A.Data...)}})
	}
	for range chain - 1 {
		for i, c := range at.cola {
			if err := draw(c.LoRA, at.layers[i]); err != nil {
				return nil, err
			}
			c.Links = append(c.Links, append([]float32(nil), c.A.Data...))
		}
	}
	for _, c := range at.cola {
		copy(c.A.Data, c.Links[0])
	}
	for i, l := range at.layers {
		l.Adapter = at.cola[i]
	}
	return at, nil
}

func (colaMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += loraParams(l, o.Int("rank"))
	}
	return n
}

func init() { Register("cola", colaMethod{}) }
