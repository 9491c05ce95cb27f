package methods

import (
	"fmt"
	"math"
	"slices"

	"peftbench/nn"
)

// LoRA is low-rank adaptation (Hu et al. 2021):
//
//	y = x·W0ᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ,  ΔW = s·B·A,
//
// A (r×In), B (Out×r). HF PEFT's default init draws A Kaiming-uniform
// (a=√5) and sets B = 0, so ΔW = 0 at step 0; s = α/r (rsLoRA: α/√r).
// The LoRA-family methods (rsLoRA, LoRA+, LoRA-FA, PiSSA, OLoRA, LoRA-GA)
// are this adapter with another scale, learning-rate ratio, frozen A or
// initialisation.
//
// Methods that start from a decomposition of W0 (PiSSA, OLoRA, LoRA-GA)
// freeze the residual W0 − s·B₀·A₀, where A₀, B₀ are the initial factors.
// Rather than store that dense matrix, the adapter keeps A₀ and B₀ and
// computes x·W0ᵀ − s·(x·A₀ᵀ)·B₀ᵀ + s·(x̃·Aᵀ)·Bᵀ: the same function, with
// l.Weight left at W0 (switching the adapter off gives back the base
// model) and, at step 0, outputs exactly equal to the base model's instead
// of off by the rounding of a float32 residual.
type LoRA struct {
	A, B  *nn.Tensor
	Rank  int
	Alpha float32
	Scale float32
	// LRMulB multiplies B's learning rate (LoRA+ sets λ; 1 otherwise).
	LRMulB float32
	// A0 and B0, when non-nil, are the frozen initial factors of a
	// residual method: the frozen base weight is W0 − s·B0·A0.
	A0, B0 *nn.Tensor
	// Dropout is the probability of zeroing an input of the adapter path
	// while training (SetTraining turns it on).
	Dropout float32

	rng *nn.RNG
}

// NewLoRA returns a LoRA adapter of the given rank and α for l, drawing A
// from rng, with s = α/r. It does not attach itself: set l.Adapter.
func NewLoRA(l *nn.Linear, rank int, alpha float32, rng *nn.RNG) *LoRA {
	if rank <= 0 {
		panic(fmt.Sprintf("methods: lora: %s: rank %d, want > 0", l.Name, rank))
	}
	a := nn.Param(l.Name+".lora_A.weight", rank, l.In)
	rng.KaimingUniform(a, l.In)
	b := nn.Param(l.Name+".lora_B.weight", l.Out, rank)
	return &LoRA{A: a, B: b, Rank: rank, Alpha: alpha, Scale: alpha / float32(rank), LRMulB: 1}
}

// Forward computes x·W0ᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ (minus s·(x·A0ᵀ)·B0ᵀ for
// residual methods) without forming ΔW.
func (m *LoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	xd := g.Dropout(x, m.Dropout, m.rng)
	if m.A0 == nil { // one fused op: no N×Out temporaries
		return g.LowRankLinear(x, l.Weight, l.Bias, xd, m.A, m.B, m.Scale)
	}
	y := l.Base(g, x)
	d := m.delta(g, xd)
	if m.A0 != nil {
		d = g.Sub(d, g.MatMul(g.MatMul(x, m.A0, false, true), m.B0, false, true))
	}
	return g.Add(y, g.Scale(d, m.Scale))
}

// delta returns (x·Aᵀ)·Bᵀ.
func (m *LoRA) delta(g *nn.Graph, x *nn.Tensor) *nn.Tensor {
	return g.MatMul(g.MatMul(x, m.A, false, true), m.B, false, true)
}

// Params returns A (unless frozen: LoRA-FA) and B, both with weight decay.
func (m *LoRA) Params() []nn.ParamRef {
	lb := m.LRMulB
	if lb == 0 {
		lb = 1
	}
	var ps []nn.ParamRef
	if m.A.RequiresGrad() {
		ps = append(ps, nn.ParamRef{Name: m.A.Name, T: m.A, LRMul: 1, Decay: true})
	}
	return append(ps, nn.ParamRef{Name: m.B.Name, T: m.B, LRMul: lb, Decay: true})
}

// Merged returns W0 + s·B·A (W0 − s·B0·A0 + s·B·A for residual methods).
func (m *LoRA) Merged(l *nn.Linear) []float32 {
	w := append([]float32(nil), l.Weight.Data...)
	if m.A0 != nil {
		addLowRank(w, m.B0.Data, m.A0.Data, l.Out, m.Rank, l.In, -float64(m.Scale))
	}
	addLowRank(w, m.B.Data, m.A.Data, l.Out, m.Rank, l.In, float64(m.Scale))
	return w
}

// TrainableParams is r·(In+Out), or r·Out with A frozen.
func (m *LoRA) TrainableParams(l *nn.Linear) int {
	if !m.A.RequiresGrad() {
		return m.Rank * l.Out
	}
	return m.Rank * (l.In + l.Out)
}

func (m *LoRA) setRNG(rng *nn.RNG) { m.rng = rng }

// addLowRank adds s·B·A to w (out×in), B (out×r), A (r×in), accumulating
// each element in float64.
func addLowRank(w, b, a []float32, out, r, in int, s float64) {
	acc := make([]float64, in)
	for i := range out {
		clear(acc)
		for p, bv := range b[i*r : (i+1)*r] {
			if bv == 0 {
				continue
			}
			for j, av := range a[p*in : (p+1)*in] {
				acc[j] += float64(bv) * float64(av)
			}
		}
		row := w[i*in : (i+1)*in]
		for j, v := range acc {
			row[j] = float32(float64(row[j]) + s*v)
		}
	}
}

// setResidual freezes the current factors as A0, B0, making the frozen
// base weight W0 − s·B0·A0 (see LoRA).
func (m *LoRA) setResidual(l *nn.Linear) {
	m.A0, m.B0 = m.A.Clone(), m.B.Clone()
	m.A0.Name, m.B0.Name = l.Name+".lora_A0", l.Name+".lora_B0"
	m.A0.SetRequiresGrad(false)
	m.B0.SetRequiresGrad(false)
}

// lowRank is a LoRA-family method: the LoRA adapter with a scale rule, an
// initialisation and a per-layer configuration. Each method file declares
// one.
type lowRank struct {
	info Info
	// sqrtScale uses s = α/√r (rsLoRA) instead of α/r.
	sqrtScale bool
	// configure adjusts each adapter after init (LoRA+: LRMulB, LoRA-FA:
	// freeze A).
	configure func(a *LoRA, o Options)
	// wrap wraps the attachment to add hooks (LoRA-FA, LoRA-GA).
	wrap func(at *loraAttachment, o Options) Attachment
	// count is the trainable-parameter formula for one layer.
	count func(l LayerShape, r int) int64
}

func (m *lowRank) Info() Info { return m.info }

func (m *lowRank) scale(o Options) float32 {
	r := float64(o.Int("rank"))
	if m.sqrtScale {
		return float32(o.Float("alpha") / math.Sqrt(r))
	}
	return float32(o.Float("alpha") / r)
}

func (m *lowRank) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	at := &loraAttachment{}
	for _, l := range layers {
		a := NewLoRA(l, o.Int("rank"), float32(o.Float("alpha")), rng)
		a.Scale = m.scale(o)
		a.Dropout = float32(o.Float("dropout"))
		if err := initLoRA(a, l, o.String("init"), rng); err != nil {
			return nil, fmt.Errorf("methods: %s: %w", m.info.Name, err)
		}
		if m.configure != nil {
			m.configure(a, o)
		}
		at.add(l, a)
	}
	at.attach()
	if m.wrap != nil {
		return m.wrap(at, o), nil
	}
	return at, nil
}

func (m *lowRank) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += m.count(l, o.Int("rank"))
	}
	return n
}

// loraParams is Σ r·(in+out).
func loraParams(l LayerShape, r int) int64 { return int64(r) * int64(l.In+l.Out) }

// initLoRA applies a named initialisation to a fresh adapter (A drawn
// Kaiming-uniform, B = 0).
func initLoRA(a *LoRA, l *nn.Linear, init string, rng *nn.RNG) error {
	switch init {
	case "kaiming":
	case "gaussian": // HF PEFT: A ~ N(0, (1/r)²), B = 0.
		rng.FillNormal(a.A, 0, 1/float32(a.Rank))
	case "pissa":
		return initPiSSA(a, l)
	case "olora":
		return initOLoRA(a, l)
	case "lora-ga":
		// A and B come from the gradient estimate in BeforeTraining; until
		// then the adapter is plain LoRA, ΔW = 0.
	default:
		return fmt.Errorf("%s: unknown init %q", l.Name, init)
	}
	return nil
}

// loraAttachment is a set of LoRA-family adapters on their layers.
type loraAttachment struct {
	layers   []*nn.Linear
	adapters []*LoRA
}

func (at *loraAttachment) add(l *nn.Linear, a *LoRA) {
	at.layers = append(at.layers, l)
	at.adapters = append(at.adapters, a)
}

// plainLoRAs attaches a plain LoRA adapter (A Kaiming-uniform, B = 0, s =
// α/r, the option's dropout) to every layer: the starting point of the
// methods that re-initialise the factors from data before training (EVA,
// CorDA, LoRA-One).
func plainLoRAs(layers []*nn.Linear, o Options, rng *nn.RNG) *loraAttachment {
	at := &loraAttachment{}
	for _, l := range layers {
		a := NewLoRA(l, o.Int("rank"), float32(o.Float("alpha")), rng)
		a.Dropout = float32(o.Float("dropout"))
		at.add(l, a)
	}
	at.attach()
	return at
}

func (at *loraAttachment) attach() {
	for i, l := range at.layers {
		l.Adapter = at.adapters[i]
	}
}

func (at *loraAttachment) Layers() []*nn.Linear { return at.layers }

func (at *loraAttachment) Params() []nn.ParamRef {
	var ps []nn.ParamRef
	for _, a := range at.adapters {
		ps = append(ps, a.Params()...)
	}
	return ps
}

func (at *loraAttachment) SetTraining(rng *nn.RNG) {
	for _, a := range at.adapters {
		a.setRNG(childRNG(rng, a.A.Name))
	}
}

// childRNG returns an independent stream of rng for name, or nil.
func childRNG(rng *nn.RNG, name string) *nn.RNG {
	if rng == nil {
		return nil
	}
	return rng.Child(name)
}

func init() {
	Register("lora", &lowRank{
		info: Info{
			Name: "lora", Family: "lora", HasRank: true,
			Paper:      Paper{Title: "LoRA: Low-Rank Adaptation of Large Language Models", Authors: "Hu et al.", Year: 2021, ArXiv: "2106.09685"},
			Summary:    "ΔW = (α/r)·B·A; A Kaiming-uniform, B = 0",
			AltOptions: map[string]any{"rank": 4, "alpha": 8, "init": "gaussian"},
			Options:    loraOptions(8, 8, "kaiming", "gaussian", "pissa", "olora"),
			// HF PEFT defaults: r = 8, α = 8, dropout 0.
			ParamsFormula: "Σ r·(in+out)",
		},
		count: loraParams,
	})
}

// PEFTFactors returns the adapter as HF PEFT saves a plain LoRA layer:
// ΔW = Scale·B·A with A r×In and B Out×r, row-major. For a residual method
// (PiSSA, OLoRA, LoRA-GA) ΔW = s·B·A − s·B0·A0 is returned at rank 2r as
// A' = [A; A0] and B' = [B, −B0], the conversion HF PEFT's save_pretrained
// (path_initial_model_for_weight_conversion) applies, so that the saved
// adapter applies to the unchanged base weights.
func (m *LoRA) PEFTFactors() (a, b []float32, r int) {
	r = m.Rank
	a, b = slices.Clone(m.A.Data), slices.Clone(m.B.Data)
	if m.A0 == nil {
		return a, b, r
	}
	out := len(b) / r
	a = append(a, m.A0.Data...)
	b2 := make([]float32, out*2*r)
	for i := range out {
		copy(b2[i*2*r:], m.B.Data[i*r:(i+1)*r])
		for k, v := range m.B0.Data[i*r : (i+1)*r] {
			b2[i*2*r+r+k] = -v
		}
	}
	return a, b2, 2 * r
}
