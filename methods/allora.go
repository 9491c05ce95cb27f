package methods

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// ALLoRA (Huang and Balestriero 2024, "ALLoRA: Adaptive Learning Rate
// Mitigates LoRA Fatal Flaws") is LoRA without dropout and without a
// scaling factor, ΔW = B·A (s = 1; A Kaiming-uniform, B = 0, so step 0 is
// the base model), trained with a per-row adaptive learning rate inversely
// proportional to the rows' ℓ2 norms:
//
//	lr_i = lr / √(‖θ_i‖² + 1/η²)
//
// for each row θ_i of A (r×In: one per rank component) and of B (Out×r:
// one per output), from the weights before the update. At ‖θ_i‖ = 0 (B's
// rows at init) the rate is η·lr, which speeds B's escape from 0; a large
// row moves at about lr/‖θ_i‖.
//
// The formula and η's default are NOT verified against the paper or code
// (neither was retrievable here; the abstract says "scaling the per
// sample and per parameter gradients with a coefficient inversely
// proportional to parameters' ℓ2 norm"); the 1/η² regulariser and
// η = 1 are this implementation's choice. norm = "factor" uses one norm
// per factor (A, B) instead of per row.
//
// Where the coefficient acts: with apply = "lr" (the default) it scales
// each row's learning rate inside the optimiser (OptimizerMaker: the
// trial's AdamW steps each row of A and B as a parameter of its own whose
// LRMul is the coefficient, so the step size and the decoupled weight
// decay both scale, as a torch param group's lr does). A gradient
// transform in BeforeStep could not do this: Adam divides by the running
// RMS of the gradient, so a slowly varying per-row factor on the gradient
// largely cancels. apply = "gradient" does exactly that — scales each row
// of the clipped gradient before the optimiser — for comparison with a
// literal reading of the abstract.
type alloraAttachment struct {
	*loraAttachment
	eta      float64
	gradient bool // apply = "gradient"
	factor   bool // norm = "factor"
}

// coefficient returns 1/√(‖θ_i‖² + 1/η²) for each row of t (rows×cols),
// or one value for the whole factor.
func (at *alloraAttachment) coefficient(t *nn.Tensor) []float64 {
	rows, cols := t.Shape[0], t.Shape[1]
	inv := 1 / (at.eta * at.eta)
	sq := make([]float64, rows)
	for i := range rows {
		for _, v := range t.Data[i*cols : (i+1)*cols] {
			sq[i] += float64(v) * float64(v)
		}
	}
	if at.factor {
		var s float64
		for _, v := range sq {
			s += v
		}
		return []float64{1 / math.Sqrt(s+inv)}
	}
	c := make([]float64, rows)
	for i, v := range sq {
		c[i] = 1 / math.Sqrt(v+inv)
	}
	return c
}

// Optimizer wraps the trial's optimiser (AdamW or SGD).
func (at *alloraAttachment) Optimizer(base nn.Optimizer) (nn.Optimizer, error) {
	if _, ok := base.(nn.StateSizer); !ok {
		return nil, fmt.Errorf("methods: allora: optimiser %T has no state size", base)
	}
	own := map[*nn.Tensor]bool{}
	for _, a := range at.adapters {
		own[a.A], own[a.B] = true, true
	}
	return &alloraOptimizer{base: base, at: at, own: own, rows: map[*nn.Tensor][]*nn.Tensor{}}, nil
}

// alloraOptimizer steps base with ALLoRA's per-row coefficients.
type alloraOptimizer struct {
	base nn.Optimizer
	at   *alloraAttachment
	own  map[*nn.Tensor]bool
	// rows holds, per factor, one tensor per row sharing its storage: the
	// base optimiser keys its state by tensor, so each row keeps its own
	// moments (their total is the factor's).
	rows map[*nn.Tensor][]*nn.Tensor
	refs []nn.ParamRef
}

// StateBytes is the base optimiser's state.
func (o *alloraOptimizer) StateBytes() int64 { return o.base.(nn.StateSizer).StateBytes() }

func (o *alloraOptimizer) Step(params []nn.ParamRef, lr float32) {
	o.refs = o.refs[:0]
	for _, p := range params {
		if !o.own[p.T] || p.T.Grad == nil {
			o.refs = append(o.refs, p)
			continue
		}
		c := o.at.coefficient(p.T)
		if o.at.gradient {
			scaleRows(p.T.Grad, c)
			o.refs = append(o.refs, p)
			continue
		}
		if len(c) == 1 {
			q := p
			q.LRMul = float32(float64(paramLRMul(p)) * c[0])
			o.refs = append(o.refs, q)
			continue
		}
		for i, v := range o.rowViews(p.T) {
			q := p
			q.T, q.LRMul = v, float32(float64(paramLRMul(p))*c[i])
			o.refs = append(o.refs, q)
		}
	}
	o.base.Step(o.refs, lr)
}

// rowViews returns t's row tensors, pointing at this step's gradient.
func (o *alloraOptimizer) rowViews(t *nn.Tensor) []*nn.Tensor {
	rows, cols := t.Shape[0], t.Shape[1]
	vs := o.rows[t]
	if vs == nil {
		for i := range rows {
			vs = append(vs, &nn.Tensor{Name: fmt.Sprintf("%s[%d]", t.Name, i), Shape: []int{cols},
				Data: t.Data[i*cols : (i+1)*cols]})
		}
		o.rows[t] = vs
	}
	for i, v := range vs {
		v.Grad = t.Grad[i*cols : (i+1)*cols]
	}
	return vs
}

// paramLRMul is p's learning-rate multiplier (0 means 1, as nn reads it).
func paramLRMul(p nn.ParamRef) float32 {
	if p.LRMul == 0 {
		return 1
	}
	return p.LRMul
}

// scaleRows multiplies row i of g by c[i] (every row by c[0] when c has
// one value).
func scaleRows(g []float32, c []float64) {
	if len(c) == 1 {
		for i := range g {
			g[i] = float32(float64(g[i]) * c[0])
		}
		return
	}
	cols := len(g) / len(c)
	for i, ci := range c {
		row := g[i*cols : (i+1)*cols]
		for j := range row {
			row[j] = float32(float64(row[j]) * ci)
		}
	}
}

type alloraMethod struct{}

func (alloraMethod) Info() Info {
	return Info{
		Name: "allora", Family: "lora", HasRank: true,
		Paper: Paper{Title: "ALLoRA: Adaptive Learning Rate Mitigates LoRA Fatal Flaws",
			Authors: "Huang and Balestriero", Year: 2024, ArXiv: "2410.09692"},
		Summary:    "LoRA without dropout or scaling factor (ΔW = B·A); each row of A and B learns at lr/√(‖row‖² + 1/η²)",
		AltOptions: map[string]any{"rank": 4, "eta": 4, "apply": "gradient", "norm": "factor"},
		Options: []Option{
			intOpt("rank", 8, 1, "adapter rank r"),
			floatOpt("eta", 1, fptr(1e-6), nil, "η: the coefficient is 1/√(‖row‖² + 1/η²), η at a zero row (unverified default)"),
			stringOpt("apply", "lr", []string{"lr", "gradient"},
				"scale each row's learning rate inside the optimiser (lr) or its clipped gradient before it (gradient)"),
			stringOpt("norm", "row", []string{"row", "factor"}, "norm per row of A and B (row) or per factor (factor)"),
		},
		ParamsFormula: "Σ r·(in+out)",
	}
}

func (alloraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	at := &alloraAttachment{loraAttachment: &loraAttachment{}, eta: o.Float("eta"),
		gradient: o.String("apply") == "gradient", factor: o.String("norm") == "factor"}
	for _, l := range layers {
		a := NewLoRA(l, o.Int("rank"), 1, rng)
		a.Scale = 1
		at.add(l, a)
	}
	at.attach()
	return at, nil
}

func (alloraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += loraParams(l, o.Int("rank"))
	}
	return n
}

func init() { Register("allora", alloraMethod{}) }
