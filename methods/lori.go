package methods

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"peftbench/nn"
)

// LoRI is LoRA with reduced interference (Zhang et al. 2025, arXiv
// 2504.07448):
//
//	ΔW = s·(B ⊙ M)·A,  s = α/r,
//
// A (r×In) frozen at its random init, B (Out×r) trained from 0, M a binary
// mask. The paper trains in two stages, LoRI-D (dense, M = 1) then LoRI-S
// (sparse B with a fixed mask); the authors' code (juzhengz/LoRI) trains
// LoRI-D, extracts the mask from |B| (src/extract_mask.py, get_model_mask:
// one threshold over every B of the model, keep |B| ≥ the k-th largest, k =
// ⌊(1−s)·N⌋, sparsity s = 0.9 in its scripts), then starts a new run with
// the mask: a fresh PEFT model whose A is the same default-seeded draw and
// whose B is 0 again, a fresh AdamW whose gradients are masked
// (MaskedAdamW), and a 10× larger learning rate in its scripts.
//
// Here one trial holds both stages: the first dense_fraction of the steps
// (rounded half up, at least 1) train B densely; AfterStep of the last of
// them computes M (mask_scope "global": one threshold over all targeted
// layers, the code's get_model_mask; "layer": one per layer, its
// get_matrixwise_mask), applies it (reset_b true, the code: B ← 0; false:
// B ← B ⊙ M, keep the dense values) and restarts the optimiser (AdamW.Reset,
// a fresh SGD), so the masked entries, whose gradient through B ⊙ M is
// exactly 0, stay exactly 0. The learning rate is the trial's throughout
// (the scripts' LoRI-S rate is 10× LoRI-D's). The optimiser is the trial's
// (OptimizerMaker returns it unchanged, to restart it at the mask step).
//
// A follows the code's LoraConfig default: Kaiming-uniform (a = √5), HF
// PEFT's LoRA init; the paper calls A a random Gaussian projection, which
// init_a "gaussian" (HF's N(0, 1/r²)) gives. The code turns LoRA dropout
// off (disable_dropout). The trainable count is the dense B, r·Out a layer;
// after the mask step about (1−s)·r·Out of it moves.
type LoRI struct {
	A, B  *nn.Tensor // frozen A (r×In), trainable B (Out×r)
	M     *nn.Tensor // the mask (Out×r, entries 0 or 1); nil before the mask step
	Rank  int
	Scale float32
}

// Forward computes x·W0ᵀ + b + s·(x·Aᵀ)·(B ⊙ M)ᵀ.
func (m *LoRI) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	b := m.B
	if m.M != nil {
		b = g.Mul(m.B, m.M)
	}
	return g.LowRankLinear(x, l.Weight, l.Bias, x, m.A, b, m.Scale)
}

// Params returns B, with weight decay.
func (m *LoRI) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: m.B.Name, T: m.B, LRMul: 1, Decay: true}}
}

// Merged returns W0 + s·(B ⊙ M)·A.
func (m *LoRI) Merged(l *nn.Linear) []float32 {
	w := append([]float32(nil), l.Weight.Data...)
	b := m.B.Data
	if m.M != nil {
		b = make([]float32, len(m.B.Data))
		for i, v := range m.B.Data {
			b[i] = v * m.M.Data[i]
		}
	}
	addLowRank(w, b, m.A.Data, l.Out, m.Rank, l.In, float64(m.Scale))
	return w
}

// loriAttachment holds the adapters and the two-stage schedule.
type loriAttachment struct {
	*layerAttachment
	lori     []*LoRI
	sparsity float64
	global   bool
	resetB   bool
	fraction float64
	opt      nn.Optimizer
	// MaskStep is the step whose AfterStep applied the mask, −1 before.
	MaskStep int
}

// Optimizer returns base unchanged, keeping it to restart it at the mask
// step; it must be one LoRI can restart (AdamW or SGD).
func (at *loriAttachment) Optimizer(base nn.Optimizer) (nn.Optimizer, error) {
	switch base.(type) {
	case *nn.AdamW, *nn.SGD:
	default:
		return nil, fmt.Errorf("methods: lori: cannot restart a %T at the mask step (AdamW or SGD)", base)
	}
	at.opt = base
	return base, nil
}

// denseSteps is how many of total steps train B densely: dense_fraction of
// them rounded half up, at least 1.
func (at *loriAttachment) denseSteps(total int) int {
	return max(1, int(math.Floor(at.fraction*float64(total)+0.5)))
}

// AfterStep applies the mask after the last dense step.
func (at *loriAttachment) AfterStep(step, total int) {
	if at.MaskStep >= 0 || step != at.denseSteps(total)-1 {
		return
	}
	at.applyMask()
	at.MaskStep = step
	switch o := at.opt.(type) {
	case *nn.AdamW:
		o.Reset()
	case *nn.SGD:
		o.Meter.Add(-o.StateBytes())
		*o = nn.SGD{Momentum: o.Momentum, WeightDecay: o.WeightDecay, Meter: o.Meter}
	}
}

// applyMask computes M from |B| (one threshold over every layer, or one
// per layer) and sets B to 0 (reset_b) or B ⊙ M.
func (at *loriAttachment) applyMask() {
	threshold := func(ms []*LoRI) float32 {
		var abs []float32
		for _, m := range ms {
			for _, v := range m.B.Data {
				abs = append(abs, float32(math.Abs(float64(v))))
			}
		}
		k := int((1 - at.sparsity) * float64(len(abs)))
		if k <= 0 {
			return float32(math.Inf(1)) // keep nothing
		}
		slices.SortFunc(abs, func(a, b float32) int { return cmp.Compare(b, a) })
		return abs[k-1] // the code's torch.topk(|B|, k).values[-1]
	}
	groups := [][]*LoRI{at.lori}
	if !at.global {
		groups = nil
		for _, m := range at.lori {
			groups = append(groups, []*LoRI{m})
		}
	}
	for _, ms := range groups {
		t := threshold(ms)
		for _, m := range ms {
			m.M = nn.New(m.B.Shape...)
			m.M.Name = m.B.Name + ".mask"
			for i, v := range m.B.Data {
				if float32(math.Abs(float64(v))) >= t {
					m.M.Data[i] = 1
				}
			}
		}
	}
	for _, m := range at.lori {
		for i := range m.B.Data {
			if at.resetB {
				m.B.Data[i] = 0
			} else {
				m.B.Data[i] *= m.M.Data[i]
			}
		}
	}
}

type loriMethod struct{}

func (loriMethod) Info() Info {
	return Info{
		Name: "lori", Family: "lora", HasRank: true,
		Paper: Paper{Title: "LoRI: Reducing Cross-Task Interference in Multi-Task Low-Rank Adaptation",
			Authors: "Zhang et al.", Year: 2025, ArXiv: "2504.07448"},
		Summary: "ΔW = s·(B ⊙ M)·A: A frozen random, B dense for a fraction of the steps, then masked to its top (1−s) |B|",
		Options: []Option{
			intOpt("rank", 8, 1, "adapter rank r (the code's config default; its scripts use 32 and 64)"),
			floatOpt("alpha", 16, fptr(0), nil, "scaling numerator α, s = α/r (the scripts' α = 2r)"),
			floatOpt("sparsity", 0.9, fptr(0), fptr(1), "fraction s of B's entries masked out (the scripts' 0.9)"),
			stringOpt("mask_scope", "global", []string{"global", "layer"},
				"one |B| threshold over every targeted layer (the code's get_model_mask) or one per layer"),
			{Name: "dense_fraction", Kind: "float", Default: 0.5, Min: fptr(0), Max: fptr(1), MaxOpen: true,
				Doc: "fraction of the steps trained dense (LoRI-D) before the mask step, rounded half up, at least 1"},
			boolOpt("reset_b", true, "restart B from 0 after the mask step (the code's fresh LoRI-S run) instead of keeping B ⊙ M"),
			stringOpt("init_a", "kaiming", []string{"kaiming", "gaussian"},
				"A's frozen init: kaiming (the code's HF LoRA default) or gaussian (N(0, 1/r²), the paper's random Gaussian)"),
		},
		AltOptions: map[string]any{"rank": 4, "alpha": 8, "sparsity": 0.5, "mask_scope": "layer",
			"dense_fraction": 0.34, "reset_b": false, "init_a": "gaussian"},
		ParamsFormula: "Σ r·out (the dense B; about (1−s)·r·out of it trains after the mask step)",
	}
}

func (loriMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	var ls []*LoRI
	la, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		m := &LoRI{A: nn.New(r, l.In), B: nn.Param(l.Name+".lori_B", l.Out, r), Rank: r,
			Scale: float32(o.Float("alpha") / float64(r))}
		m.A.Name = l.Name + ".lori_A"
		switch o.String("init_a") {
		case "kaiming":
			rng.KaimingUniform(m.A, l.In)
		case "gaussian":
			rng.FillNormal(m.A, 0, 1/float32(r))
		}
		ls = append(ls, m)
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return &loriAttachment{layerAttachment: la, lori: ls, sparsity: o.Float("sparsity"),
		global: o.String("mask_scope") == "global", resetB: o.Bool("reset_b"),
		fraction: o.Float("dense_fraction"), MaskStep: -1}, nil
}

func (loriMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += int64(o.Int("rank")) * int64(l.Out)
	}
	return n
}

func init() { Register("lori", loriMethod{}) }
