package methods

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// OFT is orthogonal finetuning as HF PEFT's peft.tuners.oft implements it
// (OFTv2, Qiu et al. 2025, after OFT, Qiu et al. 2023): the layer's input
// is rotated by a block-diagonal orthogonal R before the frozen layer,
//
//	y = (x·R)·W0ᵀ + b,   R = blockdiag(R_1, …, R_k),   W' = W0·Rᵀ,
//
// the "input-centric" forward of HF's OFTRotationModule (einsum over x
// reshaped to (…, k, b)): the cost is N·In·b per step. Where forming the
// merged weight W0·Rᵀ (HF's merge: W'ᵀ = R·W0ᵀ; Out·In·b) and one GEMM
// is cheaper — a layer with few outputs next to the batch rows, see
// oftRotateWeight — Forward does that instead; the two are the same
// function with the same exact gradient, rounded differently. Each
// R_j = Cayley(Q_j) of a skew-symmetric b×b Q_j built from b(b−1)/2
// trainable numbers (the strict upper triangle in torch.triu_indices
// order, Q = U − Uᵀ). By default (use_cayley_neumann) R_j is HF's
// Cayley–Neumann polynomial with num_cayley_neumann_terms = 5,
// R ≈ I + 2Q + 2Q² + 2Q³ + Q⁴ (neumannCoeffs), a truncation of
// (I + Q)(I − Q)⁻¹ and orthogonal only up to the truncation error
// (oftNeumannBound); use_cayley_neumann = false is the exact
// R = (I − Q)(I + Q)⁻¹ that HF computes with torch.linalg.solve(I + Q,
// I − Q, left=False). (The two are each other's transposes in the limit:
// HF's series expands the inverse of its exact transform. We follow HF in
// both.) Gradients of both are exact (cayleyOp).
//
// Block size: oft_block_size b (the sweep's rank axis; HF's r = 0 is
// inferred as In/b per layer). Where b does not divide a layer's In or
// exceeds it, HF's adjust_oft_parameters picks the nearest divisor of In
// (the lower one on a tie, In itself when b > In), with a warning; we do
// the same per layer (oftBlockSize), so the default b = 32 fits every
// layer (784 → 28). A layer whose adjusted block is 1 has nothing to train
// and is an error. block_share: one R_1 for all blocks of a layer (k
// shared). coft: before every forward (and merge) the numbers of each
// block are projected, in place and without gradient as HF does, onto the
// ball ‖Q_j‖_F ≤ eps/√(blocks) (HF's _project_batch).
//
// Speed: the rotations cost O(In·b²) per step, independent of the batch:
// five b×b float64 products per block at the default five terms (two
// forward, three backward, see cayleyOp), about 3K for other term
// counts K; the rotation of the input costs N·In·b forward and again for
// dR (and dX). Unlike LoRA, the first layer also needs dL/d(x·R) =
// dY·W0, a full N·In·Out GEMM, to train R. On the reference steps of
// `bench perf` (2 threads) that is 2.0–2.7× LoRA's step on the MLP
// (batch 128, every linear) and 1.05–1.4× on the transformer.
//
// Init: init_weights = true (HF's default) sets Q = 0, so R = I and the
// model starts exactly at the base; false draws N(0, 0.1²) as HF does.
// Not implemented: HF's module_dropout, which HF PEFT builds but never
// applies in the Linear forward at this snapshot (so it is not an option
// here). Parameter: <layer>.oft_R.weight (blocks × b(b−1)/2), with weight
// decay like every HF Trainer parameter that is not a bias or a norm.
type OFT struct {
	R         *nn.Tensor
	Block     int
	Blocks    int // In/b
	Share     bool
	COFT      bool
	Eps       float64
	UseSeries bool
	Terms     int

	op *cayleyOp
}

// Forward rotates x block by block and applies the frozen layer, or, where
// that is cheaper (oftRotateWeight), forms W' = W0·Rᵀ and applies it.
func (m *OFT) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	r := m.rotations(g)
	if oftRotateWeight(x.Rows(), l.Out, m.Block, x.Grad != nil) {
		return g.Linear(x, rotateRowsT(g, l.Weight, r), l.Bias)
	}
	return g.Linear(rotateInput(g, x, r), l.Weight, l.Bias)
}

// oftRotateWeight reports whether y = x·(W0·Rᵀ)ᵀ costs fewer
// multiply-adds per step than y = (x·R)·W0ᵀ for n rows, out outputs and
// block size b (both per input column; gx: x needs a gradient). Rotating
// x costs n·b forward and n·b for dR, plus n·b for dX when gx, and
// n·out to send the gradient back through W0 to x·R; forming W' costs
// out·b forward and out·b for dR, plus out·n for dW' and, when gx, n·out
// for dX = dY·W'. The two are equal up to rounding; only the reference
// MLP's 10-output head (n = 128) takes the weight path at the defaults.
func oftRotateWeight(n, out, b int, gx bool) bool {
	viaInput, viaWeight := 2*n*b+n*out, 2*out*b+out*n
	if gx {
		viaInput += n * b
		viaWeight += n * out
	}
	return viaWeight < viaInput
}

// rotations projects Q (coft) and returns the blocks' R in g.
func (m *OFT) rotations(g *nn.Graph) *nn.Tensor {
	if m.COFT {
		m.project()
	}
	return m.op.apply(g, m.R)
}

// project is HF's _project_batch: each block's skew Q with ‖Q‖_F above
// eps/√(rows of oft_R) is scaled onto that sphere (the upper-triangle
// numbers are ‖Q‖_F/√2 in norm).
func (m *OFT) project() {
	rows := m.R.Shape[0]
	n := m.R.Shape[1]
	eps := m.Eps / math.Sqrt(float64(rows))
	for j := range rows {
		v := m.R.Data[j*n : (j+1)*n]
		var s float64
		for _, x := range v {
			s += 2 * float64(x) * float64(x)
		}
		norm := math.Sqrt(s)
		if norm <= eps {
			continue
		}
		for i, x := range v {
			v[i] = float32(eps * (float64(x) / norm))
		}
	}
}

// Params returns oft_R.
func (m *OFT) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: m.R.Name, T: m.R, LRMul: 1, Decay: true}}
}

// Merged returns W0·Rᵀ, R = blockdiag(R_j) formed by rotating the identity.
func (m *OFT) Merged(l *nn.Linear) []float32 {
	g := &nn.Graph{NoGrad: true}
	rb := rotateInput(g, identityRows(g, l.In), m.rotations(g)) // rows of R
	return append([]float32(nil), g.MatMul(l.Weight, rb, false, true).Data...)
}

// oftBlockSize is HF PEFT's OFTLayer.adjust_oft_parameters applied when b
// does not divide in or exceeds it: the nearer of the divisors of in just
// below and just above b (the lower on a tie), or in when b ≥ in.
func oftBlockSize(in, b int) int {
	if in%b == 0 && b <= in {
		return b
	}
	if b >= in {
		return in
	}
	higher := b
	for higher <= in && in%higher != 0 {
		higher++
	}
	lower := b
	for lower > 1 && in%lower != 0 {
		lower--
	}
	if b-lower <= higher-b {
		return lower
	}
	return higher
}

type oftMethod struct{}

func (oftMethod) Info() Info {
	return Info{
		Name: "oft", Family: "orthogonal", HasRank: true,
		RankOption: "oft_block_size", RankMeans: "block size b of the block-diagonal rotation (HF's r = In/b inferred)",
		Paper:      Paper{Title: "Orthogonal Finetuning Made Scalable", Authors: "Qiu et al.", Year: 2025, ArXiv: "2506.19847"},
		Summary:    "W' = W0·Rᵀ, R block-diagonal of Cayley(Q_j) (Cayley–Neumann series), input rotated x·R",
		AltOptions: map[string]any{"oft_block_size": 8, "use_cayley_neumann": false, "block_share": true},
		Options: []Option{
			intOpt("oft_block_size", 32, 2, "block size b of R; adjusted per layer to a divisor of in_features as HF PEFT does"),
			boolOpt("use_cayley_neumann", true, "Cayley–Neumann series instead of the exact Cayley transform (solve)"),
			intOpt("num_cayley_neumann_terms", 5, 1, "terms of the Cayley–Neumann series"),
			boolOpt("block_share", false, "one rotation block shared by all blocks of a layer"),
			boolOpt("coft", false, "constrained OFT: project each Q onto ‖Q‖ ≤ eps/√blocks before every forward"),
			floatOpt("eps", 6e-5, fptr(0), nil, "COFT radius (only with coft)"),
			boolOpt("init_weights", true, "true: Q = 0 (R = I); false: Q ~ N(0, 0.1²)"),
		},
		ParamsFormula: "Σ in·(b−1)/2 (b(b−1)/2 with block_share), b adjusted to divide in",
	}
}

// CheckLayers refuses a layer whose adjusted block size is 1.
func (oftMethod) CheckLayers(o Options, layers []LayerShape) error {
	b := o.Int("oft_block_size")
	for _, l := range layers {
		if eb := oftBlockSize(l.In, b); eb < 2 {
			return optionError("oft", "oft_block_size", fmt.Sprintf("%d adjusts to block size %d on layer %s (%d×%d): a 1×1 rotation has nothing to train", b, eb, l.Name, l.Out, l.In))
		}
	}
	return nil
}

func (oftMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	return attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		b := oftBlockSize(l.In, o.Int("oft_block_size"))
		if b < 2 {
			return nil, fmt.Errorf("methods: oft: layer %s (%d×%d): block size %d", l.Name, l.Out, l.In, b)
		}
		m := &OFT{Block: b, Blocks: l.In / b, Share: o.Bool("block_share"), COFT: o.Bool("coft"), Eps: o.Float("eps"),
			UseSeries: o.Bool("use_cayley_neumann"), Terms: o.Int("num_cayley_neumann_terms")}
		rows := m.Blocks
		if m.Share {
			rows = 1
		}
		m.R, _ = param(l, "oft_R.weight", true, rows, b*(b-1)/2)
		if !o.Bool("init_weights") {
			rng.FillNormal(m.R, 0, 0.1)
		}
		terms := 0
		if m.UseSeries {
			terms = m.Terms
		}
		m.op = newCayleyOp("oft-cayley", b, rows, skewUpper, terms)
		return m, nil
	})
}

func (oftMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		b := oftBlockSize(l.In, o.Int("oft_block_size"))
		rows := l.In / b
		if o.Bool("block_share") {
			rows = 1
		}
		n += int64(rows) * int64(b*(b-1)/2)
	}
	return n
}

func init() { Register("oft", oftMethod{}) }
