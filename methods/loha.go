package methods

import (
	"fmt"

	"peftbench/nn"
)

// LoHa is FedPara's low-rank Hadamard product (Hyeon-Woo et al. 2021) as
// HF PEFT's peft.tuners.loha implements it for linear layers (after
// LyCORIS):
//
//	ΔW = s·(W1a·W1b) ⊙ (W2a·W2b),  s = α/r,  y = x·(W0 + ΔW)ᵀ + b,
//
// W1a, W2a (Out×r), W1b, W2b (r×In): 2r·(In+Out) trainable numbers for an
// update of rank up to r². HF PEFT's default init (init_weights=True) draws
// W1a, W1b, W2a Kaiming-uniform (a=√5; torch's fan-in is the second
// dimension: r for W1a and W2a, In for W1b) in that order and sets W2b = 0,
// so ΔW = 0 at step 0; init_weights=false draws W2b too (not a no-op; HF
// marks it for debugging).
//
// Training-time randomness follows HF PEFT's LycorisLayer in training mode
// (SetTraining): with probability module_dropout a forward pass skips the
// adapter (HF: torch.rand(1) > module_dropout keeps it), and rank_dropout
// zeroes each row of ΔW with that probability and divides the kept rows by
// the kept fraction (drop /= drop.mean(); LoHa always rescales). The draws
// come from the trial's dropout stream, not torch's global generator.
// Deviation: when every row is dropped HF divides by a zero mean and the
// update becomes NaN; here it is zero.
//
// HF's use_effective_conv2d (a CP decomposition for convolution kernels)
// does not apply to linear layers and is not an option. The forward pass
// forms ΔW (two Out×r×In products) and applies W0 + ΔW as one matmul, as HF
// does (F.linear with the delta weight), so merge and forward agree by
// construction; its cost over LoRA is those products, O(r·Out·In) per step
// independent of the batch.
type LoHa struct {
	W1A, W1B, W2A, W2B *nn.Tensor
	Rank               int
	Scale              float32
	drop               lycorisDropout
}

// delta returns s·(W1a·W1b) ⊙ (W2a·W2b) in g.
func (a *LoHa) delta(g *nn.Graph) *nn.Tensor {
	h1 := g.MatMul(a.W1A, a.W1B, false, false)
	h2 := g.MatMul(a.W2A, a.W2B, false, false)
	return g.Scale(g.Mul(h1, h2), a.Scale)
}

// Forward computes x·(W0 + ΔW)ᵀ + b, with LyCORIS's module and rank
// dropout while training.
func (a *LoHa) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	return a.drop.forward(g, l, x, a.delta)
}

// Params returns W1a, W1b, W2a, W2b (HF's parameter order), all with
// weight decay.
func (a *LoHa) Params() []nn.ParamRef {
	var ps []nn.ParamRef
	for _, t := range []*nn.Tensor{a.W1A, a.W1B, a.W2A, a.W2B} {
		ps = append(ps, nn.ParamRef{Name: t.Name, T: t, LRMul: 1, Decay: true})
	}
	return ps
}

// Merged returns W0 + ΔW.
func (a *LoHa) Merged(l *nn.Linear) []float32 {
	return mergedWeight(func(g *nn.Graph, l *nn.Linear) *nn.Tensor { return plusDelta(g, l, a.delta(g)) }, l)
}

func (a *LoHa) setRNG(rng *nn.RNG) { a.drop.rng = rng }

// lycorisDropout is HF PEFT's LycorisLayer training-time randomness shared
// by LoHa and LoKr: module dropout skips the adapter for a whole forward
// pass; rank dropout zeroes rows of ΔW (optionally rescaling the kept rows
// by 1/kept fraction). Off while rng is nil (evaluation, merging).
type lycorisDropout struct {
	rank, module float32
	rescale      bool
	rng          *nn.RNG
}

// forward returns x·(W0 + ΔW)ᵀ + b with ΔW = delta(g), drawing module
// dropout first and rank dropout second, in HF's order.
func (d *lycorisDropout) forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor, delta func(g *nn.Graph) *nn.Tensor) *nn.Tensor {
	if d.rng != nil && d.module > 0 && !(d.rng.Float32() > d.module) {
		return l.Base(g, x)
	}
	dw := delta(g)
	if d.rng != nil && d.rank > 0 {
		keep := g.Zeros(l.Out)
		kept := 0
		for i := range keep.Data {
			if d.rng.Float32() > d.rank {
				keep.Data[i] = 1
				kept++
			}
		}
		if d.rescale && kept > 0 {
			s := float32(l.Out) / float32(kept)
			for i := range keep.Data {
				keep.Data[i] *= s
			}
		}
		dw = g.MulCol(dw, keep)
	}
	return g.Linear(x, plusDelta(g, l, dw), l.Bias)
}

// lycorisAttachment is the attachment of LoHa and LoKr: one adapter per
// layer, each with its own stream for module and rank dropout.
type lycorisAttachment struct {
	*layerAttachment
}

func (at lycorisAttachment) SetTraining(rng *nn.RNG) {
	for i, a := range at.adapters {
		a.(interface{ setRNG(*nn.RNG) }).setRNG(childRNG(rng, at.layers[i].Name))
	}
}

// lycorisOptions are the options HF PEFT's LycorisConfig methods share.
func lycorisOptions() []Option {
	return []Option{
		intOpt("rank", 8, 1, "adapter rank r (HF r)"),
		floatOpt("alpha", 8, fptr(0), nil, "scaling numerator α, s = α/r; a number or a multiple of the rank (\"2r\")"),
		{Name: "rank_dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true,
			Doc: "probability of dropping each row of ΔW while training"},
		{Name: "module_dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true,
			Doc: "probability of skipping the adapter for a forward pass while training"},
	}
}

type lohaMethod struct{}

func (lohaMethod) Info() Info {
	return Info{
		Name: "loha", Family: "hadamard", HasRank: true,
		RankMeans: "rank r of each of the two factors of the Hadamard product (ΔW's rank ≤ r²)",
		Paper: Paper{Title: "FedPara: Low-Rank Hadamard Product for Communication-Efficient Federated Learning",
			Authors: "Hyeon-Woo et al.", Year: 2021, ArXiv: "2108.06098"},
		Summary: "ΔW = (α/r)·(W1a·W1b) ⊙ (W2a·W2b); W2b = 0, the rest Kaiming-uniform",
		Options: append(lycorisOptions(),
			boolOpt("init_weights", true, "HF's default init (W2b = 0, a no-op); false draws W2b Kaiming-uniform too")),
		AltOptions:    map[string]any{"rank": 4, "alpha": 16, "rank_dropout": 0.1, "module_dropout": 0.1},
		ParamsFormula: "Σ 2r·(in+out)",
	}
}

// CheckLayers refuses a rank above min(out, in) of a layer, as for LoRA:
// each factor W·W is then already of full rank (HF PEFT does not check).
func (lohaMethod) CheckLayers(o Options, layers []LayerShape) error {
	return checkRankFits("loha", "rank", o.Int("rank"), layers)
}

func (lohaMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		if r <= 0 {
			return nil, fmt.Errorf("methods: loha: %s: rank %d, want > 0", l.Name, r)
		}
		a := &LoHa{
			W1A: nn.Param(l.Name+".hada_w1_a", l.Out, r), W1B: nn.Param(l.Name+".hada_w1_b", r, l.In),
			W2A: nn.Param(l.Name+".hada_w2_a", l.Out, r), W2B: nn.Param(l.Name+".hada_w2_b", r, l.In),
			Rank: r, Scale: float32(o.Float("alpha") / float64(r)),
			drop: lycorisDropout{rank: float32(o.Float("rank_dropout")), module: float32(o.Float("module_dropout")), rescale: true},
		}
		// HF reset_adapter_parameters: kaiming_uniform_(a=√5) on w1_a,
		// w1_b, w2_a (fan-in = second dimension), zeros on w2_b.
		rng.KaimingUniform(a.W1A, r)
		rng.KaimingUniform(a.W1B, l.In)
		rng.KaimingUniform(a.W2A, r)
		if !o.Bool("init_weights") {
			rng.KaimingUniform(a.W2B, l.In)
		}
		return a, nil
	})
	if err != nil {
		return nil, err
	}
	return lycorisAttachment{at}, nil
}

func (lohaMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += 2 * int64(o.Int("rank")) * int64(l.In+l.Out)
	}
	return n
}

func init() { Register("loha", lohaMethod{}) }
