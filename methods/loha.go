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
// does not apply to linear layers and is not an option. HF forms ΔW and
// applies it with F.linear; the forward pass here computes the same
// function without forming ΔW, as the rank-r² product of two Khatri–Rao
// products through LoRA's fused op (see Forward): O(N·r²·(In+Out)) per step
// instead of O((N + r)·Out·In). Merged forms ΔW as HF's get_delta_weight
// does.
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
// dropout while training, without forming ΔW: the Hadamard product of two
// rank-r products is the rank-r² product U·V, U = W1a ⊙ᵣ W2a (Out×r²,
// U[i, p·r+q] = W1a[i,p]·W2a[i,q]) and V = W1b ⊙ᵣ W2b (r²×In, V[p·r+q, j]
// = W1b[p,j]·W2b[q,j]), so ΔW = s·U·V runs through LoRA's fused op; rank
// dropout scales U's rows.
func (a *LoHa) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	if a.drop.skip() {
		return l.Base(g, x)
	}
	r := a.Rank
	u := g.Custom(lohaRowKR, []int{l.Out, r * r}, a.W1A, a.W2A)
	v := g.Custom(lohaColKR, []int{r * r, l.In}, a.W1B, a.W2B)
	if keep := a.drop.rowMask(g, l.Out); keep != nil {
		u = g.MulCol(u, keep)
	}
	return g.LowRankLinear(x, l.Weight, l.Bias, x, v, u, a.Scale)
}

// lohaRowKR is the row-wise Khatri–Rao product of P, Q (m×r):
// Y[i, p·r+q] = P[i,p]·Q[i,q] (m×r²).
var lohaRowKR = &nn.Func{
	Name: "loha_row_khatri_rao",
	Forward: func(y []float32, in []*nn.Tensor) {
		p, q := in[0], in[1]
		r := p.Shape[1]
		for i := range p.Shape[0] {
			pr, qr := p.Data[i*r:(i+1)*r], q.Data[i*r:(i+1)*r]
			yr := y[i*r*r : (i+1)*r*r]
			for a, pv := range pr {
				for b, qv := range qr {
					yr[a*r+b] = pv * qv
				}
			}
		}
	},
	Backward: func(dy []float32, in []*nn.Tensor) {
		p, q := in[0], in[1]
		r := p.Shape[1]
		for i := range p.Shape[0] {
			pr, qr := p.Data[i*r:(i+1)*r], q.Data[i*r:(i+1)*r]
			dr := dy[i*r*r : (i+1)*r*r]
			for a := range r {
				for b := range r {
					d := dr[a*r+b]
					if p.Grad != nil {
						p.Grad[i*r+a] += d * qr[b]
					}
					if q.Grad != nil {
						q.Grad[i*r+b] += d * pr[a]
					}
				}
			}
		}
	},
}

// lohaColKR is the column-wise Khatri–Rao product of P, Q (r×n):
// Y[p·r+q, j] = P[p,j]·Q[q,j] (r²×n).
var lohaColKR = &nn.Func{
	Name: "loha_col_khatri_rao",
	Forward: func(y []float32, in []*nn.Tensor) {
		p, q := in[0], in[1]
		r, n := p.Shape[0], p.Shape[1]
		for a := range r {
			for b := range r {
				yr := y[(a*r+b)*n : (a*r+b+1)*n]
				for j, pv := range p.Data[a*n : (a+1)*n] {
					yr[j] = pv * q.Data[b*n+j]
				}
			}
		}
	},
	Backward: func(dy []float32, in []*nn.Tensor) {
		p, q := in[0], in[1]
		r, n := p.Shape[0], p.Shape[1]
		for a := range r {
			for b := range r {
				dr := dy[(a*r+b)*n : (a*r+b+1)*n]
				pr, qr := p.Data[a*n:(a+1)*n], q.Data[b*n:(b+1)*n]
				if p.Grad != nil {
					g := p.Grad[a*n : (a+1)*n]
					for j, d := range dr {
						g[j] += d * qr[j]
					}
				}
				if q.Grad != nil {
					g := q.Grad[b*n : (b+1)*n]
					for j, d := range dr {
						g[j] += d * pr[j]
					}
				}
			}
		}
	},
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

// skip draws module dropout: true when this training forward pass leaves
// the adapter out. Forward passes draw it first and rowMask second, in
// HF's order.
func (d *lycorisDropout) skip() bool {
	return d.rng != nil && d.module > 0 && !(d.rng.Float32() > d.module)
}

// rowMask draws rank dropout: a graph vector over ΔW's out rows, each 0 or
// kept (1, or out/kept with rescale), or nil when rank dropout is off.
func (d *lycorisDropout) rowMask(g *nn.Graph, out int) *nn.Tensor {
	if d.rng == nil || d.rank <= 0 {
		return nil
	}
	keep := g.Zeros(out)
	kept := 0
	for i := range keep.Data {
		if d.rng.Float32() > d.rank {
			keep.Data[i] = 1
			kept++
		}
	}
	if d.rescale && kept > 0 {
		s := float32(out) / float32(kept)
		for i := range keep.Data {
			keep.Data[i] *= s
		}
	}
	return keep
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
