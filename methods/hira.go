package methods

import (
	"fmt"

	"peftbench/nn"
)

// HiRA is Hadamard high-rank adaptation (Huang et al., ICLR 2025) as HF
// PEFT's peft.tuners.hira implements it for linear layers:
//
//	ΔW = W0 ⊙ (B·A),  y = x·W0ᵀ + b + drop(x)·ΔWᵀ,
//
// A (r×In), B (Out×r), no scaling factor (HF's HiraConfig has no alpha).
// The Hadamard product with the frozen W0 lets ΔW reach rank min(Out, In)
// although B·A has rank r. HF's init: init_weights "true" (its default
// True) draws A Kaiming-uniform (a=√5, fan-in In) and sets B = 0, so ΔW =
// 0; "gaussian" draws A ~ N(0, (1/r)²), B = 0; "false" keeps HF's torch.randn
// for both A and B (not a no-op; HF: for debugging). HF's option is a bool
// or "gaussian"; here it is one string option with those three values.
// hira_dropout is inverted dropout on the adapter path's input while
// training (SetTraining), as HF's nn.Dropout.
//
// HF PEFT places no bound on r; neither does CheckLayers (r above
// min(Out, In) only makes B·A a generic full-rank matrix), so HF's default
// r = 32 works on layers narrower than 32. Without dropout the forward pass
// applies W0 + ΔW as one matmul (HF: base output plus F.linear(x, ΔW)).
// The math needs the dense ΔW: W0 ⊙ (B·A) has no low-rank factorisation, so
// a step forms B·A (r·Out·In) and backward the dense gradient of ΔW
// (N·Out·In), which LoRA's fused op never forms: at the benchmark's batch
// of 16 a step costs about 5× LoRA's on the reference MLP (r = 32 against
// LoRA's 8) and 2.5× on the transformer.
type HiRA struct {
	A, B    *nn.Tensor // hira_A (r×In), hira_B (Out×r)
	Rank    int
	Dropout float32

	rng *nn.RNG
}

// delta returns W0 ⊙ (B·A) in g.
func (h *HiRA) delta(g *nn.Graph, l *nn.Linear) *nn.Tensor {
	return g.Mul(l.Weight, g.MatMul(h.B, h.A, false, false))
}

// Forward computes x·W0ᵀ + b + drop(x)·ΔWᵀ.
func (h *HiRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	if h.Dropout > 0 && h.rng != nil {
		xd := g.Dropout(x, h.Dropout, h.rng)
		return g.Add(l.Base(g, x), g.MatMul(xd, h.delta(g, l), false, true))
	}
	return g.Linear(x, plusDelta(g, l, h.delta(g, l)), l.Bias)
}

// Params returns A and B, both with weight decay.
func (h *HiRA) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: h.A.Name, T: h.A, LRMul: 1, Decay: true},
		{Name: h.B.Name, T: h.B, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + W0 ⊙ (B·A).
func (h *HiRA) Merged(l *nn.Linear) []float32 {
	return mergedWeight(func(g *nn.Graph, l *nn.Linear) *nn.Tensor { return plusDelta(g, l, h.delta(g, l)) }, l)
}

type hiraMethod struct{}

func (hiraMethod) Info() Info {
	return Info{
		Name: "hira", Family: "hadamard", HasRank: true, RankAboveMin: true,
		RankMeans: "rank r of B·A (ΔW = W0 ⊙ B·A itself can reach full rank)",
		// HiRA is not on arXiv: ICLR 2025, openreview.net/forum?id=TwJrTz9cRS.
		Paper: Paper{Title: "HiRA: Parameter-Efficient Hadamard High-Rank Adaptation for Large Language Models",
			Authors: "Huang et al.", Year: 2025, URL: "https://openreview.net/forum?id=TwJrTz9cRS"},
		Summary: "ΔW = W0 ⊙ (B·A): LoRA's factors modulate W0 elementwise; A Kaiming-uniform, B = 0",
		Options: []Option{
			intOpt("rank", 32, 1, "rank r of B·A (HF r)"),
			{Name: "hira_dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true,
				Doc: "dropout on the adapter path's input while training"},
			stringOpt("init_weights", "true", []string{"true", "gaussian", "false"},
				"HF's init_weights: true (A Kaiming, B = 0), gaussian (A ~ N(0, 1/r²), B = 0) or false (A, B ~ N(0, 1); not a no-op)"),
		},
		AltOptions:    map[string]any{"rank": 4, "init_weights": "gaussian"},
		ParamsFormula: "Σ r·(in+out)",
	}
}

// CheckLayers accepts every rank (see HiRA).
func (hiraMethod) CheckLayers(Options, []LayerShape) error { return nil }

func (hiraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	init := o.String("init_weights")
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		if r <= 0 {
			return nil, fmt.Errorf("methods: hira: %s: rank %d, want > 0", l.Name, r)
		}
		h := &HiRA{A: nn.Param(l.Name+".hira_A", r, l.In), B: nn.Param(l.Name+".hira_B", l.Out, r),
			Rank: r, Dropout: float32(o.Float("hira_dropout"))}
		switch init {
		case "true":
			rng.KaimingUniform(h.A, l.In)
		case "gaussian":
			rng.FillNormal(h.A, 0, 1/float32(r))
		case "false":
			rng.FillNormal(h.A, 0, 1)
			rng.FillNormal(h.B, 0, 1)
		default:
			return nil, fmt.Errorf("methods: hira: unknown init_weights %q", init)
		}
		return h, nil
	})
	if err != nil {
		return nil, err
	}
	return hiraAttachment{at}, nil
}

func (hiraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += int64(o.Int("rank")) * int64(l.In+l.Out)
	}
	return n
}

// hiraAttachment gives each adapter its own dropout stream.
type hiraAttachment struct{ *layerAttachment }

func (at hiraAttachment) SetTraining(rng *nn.RNG) {
	for _, a := range at.adapters {
		h := a.(*HiRA)
		h.rng = childRNG(rng, h.A.Name)
	}
}

func init() { Register("hira", hiraMethod{}) }
