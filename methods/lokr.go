package methods

import (
	"fmt"

	"peftbench/nn"
)

// LoKr is the LyCORIS Kronecker-product adapter (Yeh et al. 2023, cf.
// KronA) as HF PEFT's peft.tuners.lokr implements it for linear layers:
//
//	ΔW = s·W1 ⊗ W2,  s = α/r,  y = x·(W0 + ΔW)ᵀ + b,
//
// with Out = a·b and In = c·d split by HF's factorization(dim,
// decompose_factor) — (a, b) = factorization(Out), (c, d) =
// factorization(In); with −1 the divisor pair nearest √dim, smaller first —
// W1 (a×c) and W2 (b×d). HF's low-rank rules: W2 = W2a·W2b (b×r, r×d) when
// r < max(b, d)/2, else a full b×d matrix; W1 = W1a·W1b (a×r, r×c) only
// with decompose_both and r < max(a, c)/2, else full. s stays α/r whether
// or not a factor is low-rank, as in HF.
//
// Init, in HF's order (Kaiming-uniform a=√5, fan-in = second dimension):
// init_weights "true" (HF's default True): W1 = 0 (or W1a = 0, W1b
// Kaiming), W2 (or W2a, W2b) Kaiming, so ΔW = 0; "lycoris" (HF's
// init_weights="lycoris", the LyCORIS repository's way): W1 (or W1a, W1b)
// Kaiming, W2 = 0 (or W2a Kaiming, W2b = 0); "false": all Kaiming, not a
// no-op (HF: for debugging). HF's option is a bool or the string
// "lycoris"; here it is one string option with those three values.
//
// rank_dropout and module_dropout follow HF's LycorisLayer in training mode
// (see LoHa), except that the kept rows of ΔW are rescaled by 1/kept
// fraction only with rank_dropout_scale (HF's default False), as HF does
// for LoKr. HF's use_effective_conv2d applies to convolutions only and is
// not an option. The Kronecker product is an nn.Func; the forward pass
// forms ΔW (Out·In numbers) and applies W0 + ΔW as one matmul, as HF does,
// so backward forms the dense N·Out·In gradient of ΔW: at the benchmark's
// batch of 16 a step costs about 3.5× LoRA's on the reference MLP and under
// 2× on the transformer. (Applying W1·X·W2ᵀ to each input reshaped c×d
// would avoid it; not done.)
type LoKr struct {
	// W1 (a×c), or W1A (a×r) and W1B (r×c); W2 (b×d), or W2A (b×r) and
	// W2B (r×d). Exactly one form of each is non-nil.
	W1, W1A, W1B, W2, W2A, W2B *nn.Tensor
	A, B, C, D                 int
	Rank                       int
	Scale                      float32
	drop                       lycorisDropout
	kron                       *nn.Func
}

// factors returns W1 and W2 in g.
func (k *LoKr) factors(g *nn.Graph) (w1, w2 *nn.Tensor) {
	w1, w2 = k.W1, k.W2
	if w1 == nil {
		w1 = g.MatMul(k.W1A, k.W1B, false, false)
	}
	if w2 == nil {
		w2 = g.MatMul(k.W2A, k.W2B, false, false)
	}
	return w1, w2
}

// delta returns s·W1 ⊗ W2 (Out×In) in g.
func (k *LoKr) delta(g *nn.Graph) *nn.Tensor {
	w1, w2 := k.factors(g)
	return g.Scale(g.Custom(k.kron, []int{k.A * k.B, k.C * k.D}, w1, w2), k.Scale)
}

// Forward computes x·(W0 + ΔW)ᵀ + b, with LyCORIS's module and rank
// dropout while training.
func (k *LoKr) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	if k.drop.skip() {
		return l.Base(g, x)
	}
	dw := k.delta(g)
	if keep := k.drop.rowMask(g, l.Out); keep != nil {
		dw = g.MulCol(dw, keep)
	}
	return g.Linear(x, plusDelta(g, l, dw), l.Bias)
}

// Params returns the factors in HF's parameter order (lokr_w1, lokr_w1_a,
// lokr_w1_b, lokr_w2, lokr_w2_a, lokr_w2_b), all with weight decay.
func (k *LoKr) Params() []nn.ParamRef {
	var ps []nn.ParamRef
	for _, t := range []*nn.Tensor{k.W1, k.W1A, k.W1B, k.W2, k.W2A, k.W2B} {
		if t != nil {
			ps = append(ps, nn.ParamRef{Name: t.Name, T: t, LRMul: 1, Decay: true})
		}
	}
	return ps
}

// Merged returns W0 + ΔW.
func (k *LoKr) Merged(l *nn.Linear) []float32 {
	return mergedWeight(func(g *nn.Graph, l *nn.Linear) *nn.Tensor { return plusDelta(g, l, k.delta(g)) }, l)
}

func (k *LoKr) setRNG(rng *nn.RNG) { k.drop.rng = rng }

// lokrKron is torch.kron for W1 (a×c) and W2 (b×d):
// Y[i·b+p, j·d+q] = W1[i,j]·W2[p,q], Y (a·b)×(c·d).
func lokrKron(a, c, b, d int) *nn.Func {
	in := c * d
	return &nn.Func{
		Name: "kron",
		Forward: func(y []float32, ts []*nn.Tensor) {
			w1, w2 := ts[0].Data, ts[1].Data
			for i := range a {
				for p := range b {
					row := y[(i*b+p)*in : (i*b+p+1)*in]
					w2r := w2[p*d : (p+1)*d]
					for j := range c {
						v := w1[i*c+j]
						blk := row[j*d : (j+1)*d]
						for q, u := range w2r {
							blk[q] = v * u
						}
					}
				}
			}
		},
		Backward: func(dy []float32, ts []*nn.Tensor) {
			w1, w2 := ts[0], ts[1]
			for i := range a {
				for j := range c {
					v := w1.Data[i*c+j]
					var acc float64
					for p := range b {
						blk := dy[(i*b+p)*in+j*d : (i*b+p)*in+(j+1)*d]
						w2r := w2.Data[p*d : (p+1)*d]
						if w2.Grad != nil {
							g2 := w2.Grad[p*d : (p+1)*d]
							for q, e := range blk {
								g2[q] += e * v
							}
						}
						if w1.Grad != nil {
							for q, e := range blk {
								acc += float64(e) * float64(w2r[q])
							}
						}
					}
					if w1.Grad != nil {
						w1.Grad[i*c+j] += float32(acc)
					}
				}
			}
		},
	}
}

// lokrFactorization is HF PEFT's lokr factorization(dimension, factor):
// two numbers whose product is dimension. A positive factor that divides
// dimension gives (factor, dimension/factor) as is; otherwise (−1: factor =
// dimension) the divisor pair nearest √dimension with its smaller member
// at most factor, smaller first.
func lokrFactorization(dimension, factor int) (int, int) {
	if factor > 0 && dimension%factor == 0 {
		return factor, dimension / factor
	}
	if factor == -1 {
		factor = dimension
	}
	m, n := 1, dimension
	length := m + n
	for m < n {
		newM := m + 1
		for dimension%newM != 0 {
			newM++
		}
		newN := dimension / newM
		if newM+newN > length || newM > factor {
			break
		}
		m, n = newM, newN
	}
	if m > n {
		m, n = n, m
	}
	return m, n
}

// lokrShape is the factor layout HF PEFT chooses for one Out×In layer.
type lokrShape struct {
	a, b, c, d   int  // Out = a·b, In = c·d; W1 a×c, W2 b×d
	full1, full2 bool // W1, W2 stored full (else as rank-r products)
}

func lokrLayout(out, in int, o Options) lokrShape {
	r, f := o.Int("rank"), o.Int("decompose_factor")
	var s lokrShape
	s.a, s.b = lokrFactorization(out, f)
	s.c, s.d = lokrFactorization(in, f)
	// HF: use_w1 = not (decompose_both and r < max(a, c)/2),
	//     use_w2 = not (r < max(b, d)/2), in real division.
	s.full1 = !(o.Bool("decompose_both") && 2*r < max(s.a, s.c))
	s.full2 = !(2*r < max(s.b, s.d))
	return s
}

// count is the layout's trainable-parameter count at rank r.
func (s lokrShape) count(r int) int64 {
	n := int64(s.a * s.c)
	if !s.full1 {
		n = int64(r * (s.a + s.c))
	}
	if s.full2 {
		return n + int64(s.b*s.d)
	}
	return n + int64(r*(s.b+s.d))
}

type lokrMethod struct{}

func (lokrMethod) Info() Info {
	return Info{
		Name: "lokr", Family: "kronecker", HasRank: true, RankAboveMin: true,
		RankMeans: "rank r of the Kronecker factor W2 (and W1 with decompose_both); a factor is stored full when r ≥ half its larger side",
		Paper: Paper{Title: "Navigating Text-To-Image Customization: From LyCORIS Fine-Tuning to Model Evaluation",
			Authors: "Yeh et al.", Year: 2023, ArXiv: "2309.14859"},
		Summary: "ΔW = (α/r)·W1 ⊗ W2 over HF's factorisation of out and in; W1 = 0, W2 (low-rank) Kaiming-uniform",
		Options: append(lycorisOptions(),
			boolOpt("decompose_both", false, "also factor W1 as W1a·W1b when r < max(a, c)/2"),
			Option{Name: "decompose_factor", Kind: "int", Default: -1, Min: fptr(-1),
				Doc: "factorisation divider of out and in; −1 picks the divisors nearest √dim"},
			boolOpt("rank_dropout_scale", false, "rescale the rows kept by rank_dropout by 1/kept fraction"),
			stringOpt("init_weights", "true", []string{"true", "lycoris", "false"},
				"HF's init_weights: true (W1 = 0), lycoris (W2 = 0) or false (all random; not a no-op)"),
		),
		AltOptions: map[string]any{"rank": 2, "alpha": 4, "decompose_both": true, "init_weights": "lycoris",
			"decompose_factor": 8, "rank_dropout": 0.1, "rank_dropout_scale": true},
		// (a, b) = factorization(out), (c, d) = factorization(in); see LoKr.
		ParamsFormula: "Σ a·c + r·(b+d) (W2 full, b·d, when 2r ≥ max(b,d); W1 r·(a+c) when decomposed)",
	}
}

// CheckLayers accepts every rank and factor on every layer: HF's rules
// fall back to full factors when the rank is large and factorization
// always returns a divisor pair (a prime dimension gives 1 × dim).
func (lokrMethod) CheckLayers(Options, []LayerShape) error { return nil }

func (lokrMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	init := o.String("init_weights")
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		if r <= 0 {
			return nil, fmt.Errorf("methods: lokr: %s: rank %d, want > 0", l.Name, r)
		}
		s := lokrLayout(l.Out, l.In, o)
		k := &LoKr{A: s.a, B: s.b, C: s.c, D: s.d, Rank: r, Scale: float32(o.Float("alpha") / float64(r)),
			drop: lycorisDropout{rank: float32(o.Float("rank_dropout")), module: float32(o.Float("module_dropout")),
				rescale: o.Bool("rank_dropout_scale")},
			kron: lokrKron(s.a, s.c, s.b, s.d)}
		if s.full1 {
			k.W1 = nn.Param(l.Name+".lokr_w1", s.a, s.c)
		} else {
			k.W1A, k.W1B = nn.Param(l.Name+".lokr_w1_a", s.a, r), nn.Param(l.Name+".lokr_w1_b", r, s.c)
		}
		if s.full2 {
			k.W2 = nn.Param(l.Name+".lokr_w2", s.b, s.d)
		} else {
			k.W2A, k.W2B = nn.Param(l.Name+".lokr_w2_a", s.b, r), nn.Param(l.Name+".lokr_w2_b", r, s.d)
		}
		// HF reset_adapter_parameters(_lycoris_way/_random): W1's tensors
		// first, then W2's; a nil-skipping Kaiming (fan-in = columns).
		kaiming := func(ts ...*nn.Tensor) {
			for _, t := range ts {
				if t != nil {
					rng.KaimingUniform(t, t.Shape[1])
				}
			}
		}
		switch init {
		case "true": // W1 (or W1a) = 0
			kaiming(k.W1B, k.W2, k.W2A, k.W2B)
		case "lycoris": // W2 (or W2b) = 0
			kaiming(k.W1, k.W1A, k.W1B, k.W2A)
		case "false":
			kaiming(k.W1, k.W1A, k.W1B, k.W2, k.W2A, k.W2B)
		default:
			return nil, fmt.Errorf("methods: lokr: unknown init_weights %q", init)
		}
		return k, nil
	})
	if err != nil {
		return nil, err
	}
	return lycorisAttachment{at}, nil
}

func (lokrMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += lokrLayout(l.Out, l.In, o).count(o.Int("rank"))
	}
	return n
}

func init() { Register("lokr", lokrMethod{}) }
