package methods

import (
	"math"

	"peftbench/nn"
)

// KRAdapter is the Khatri–Rao adapter (Albert et al., ICCV 2025), as the
// authors' KRAdapterLinearLayer (PaulAlbert31/KRAdapter, README.md) builds
// it. With k = min(In, Out), q = ⌊√k⌋ and d the smallest integer with
// q·(q+d) ≥ max(In, Out), it trains U (k×q, their "weight") and V
// (k×(q+d), their "v_weight"); the row-wise Khatri–Rao product
//
//	KR[i, a·q + c] = V[i, a]·U[i, c]   (row i = v_i ⊗ u_i, k × q(q+d))
//
// is cropped to the layer: ΔW = KR[:, :In] (Out×In) when Out ≤ In, else
// ΔW = (KR[:, :Out])ᵀ (their update is transposed when its short side
// does not match the weight's, then cropped to Out×In), and
//
//	y = x·W0ᵀ + b + s·x·ΔWᵀ,  s = scaling (their default 2).
//
// Its rows are Kronecker products of independent pairs, so ΔW generically
// has rank min(Out, In) for about 2·k^1.5 parameters: there is no rank
// axis, the sizes follow from the layer (HasRank false). Init as theirs:
// U = 0, V Kaiming-uniform with a = 5 (fan-in q+d: bound √(3/(13·(q+d)))),
// so ΔW = 0 at step 0. The forward pass forms the dense ΔW (Out·In) from
// ⌈max(In, Out)/q⌉ column-scaled copies of U, as the authors' layer does;
// columns of V past that count never reach the crop and get no gradient
// (they are trainable and counted, as in the authors' layer).
type KRAdapter struct {
	U, V    *nn.Tensor // kr_U (k×q), kr_V (k×(q+d))
	Q, D    int
	Scaling float32
}

// krShape returns k, q and d for a layer of out×in (see KRAdapter).
func krShape(out, in int) (k, q, d int) {
	k, big := min(out, in), max(out, in)
	q = int(math.Sqrt(float64(k)))
	for q*q > k {
		q--
	}
	for (q+1)*(q+1) <= k {
		q++
	}
	for q*(q+d) < big {
		d++
	}
	return k, q, d
}

// delta returns ΔW (Out×In) in g, without the scaling.
func (m *KRAdapter) delta(g *nn.Graph, l *nn.Linear) *nn.Tensor {
	big := max(l.Out, l.In)
	blocks := make([]*nn.Tensor, (big+m.Q-1)/m.Q)
	for a := range blocks {
		blocks[a] = g.MulCol(m.U, g.SliceCols(m.V, a, a+1)) // k × q: column block a of KR
	}
	kr := blocks[0]
	if len(blocks) > 1 {
		kr = g.ConcatCols(blocks...)
	}
	if kr.Cols() > big {
		kr = g.SliceCols(kr, 0, big)
	}
	if l.Out > l.In {
		kr = g.Transpose(kr)
	}
	return kr
}

func (m *KRAdapter) weight(g *nn.Graph, l *nn.Linear) *nn.Tensor {
	return plusDelta(g, l, g.Scale(m.delta(g, l), m.Scaling))
}

// Forward computes x·(W0 + s·ΔW)ᵀ + b.
func (m *KRAdapter) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	return g.Linear(x, m.weight(g, l), l.Bias)
}

// Params returns U and V, both with weight decay.
func (m *KRAdapter) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: m.U.Name, T: m.U, LRMul: 1, Decay: true},
		{Name: m.V.Name, T: m.V, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + s·ΔW.
func (m *KRAdapter) Merged(l *nn.Linear) []float32 { return mergedWeight(m.weight, l) }

type kradapterMethod struct{}

func (kradapterMethod) Info() Info {
	return Info{
		Name: "kradapter", Family: "khatri-rao", HasRank: false,
		Paper: Paper{Title: "Towards Higher Effective Rank in Parameter-efficient Fine-tuning using Khatri–Rao Product",
			Authors: "Albert et al.", Year: 2025, ArXiv: "2508.00230"},
		Summary: "ΔW = s·(row-wise Khatri–Rao product of U (k×q) and V (k×(q+d))) cropped to the layer, k = min(in, out), q = ⌊√k⌋: full-rank ΔW from ~2k^1.5 parameters; U = 0",
		Options: []Option{
			floatOpt("scaling", 2, fptr(0), nil, "s: ΔW's multiplier (the authors' layer: 2)"),
		},
		AltOptions:    map[string]any{"scaling": 0.5},
		ParamsFormula: "Σ k·(2q+d), k = min(in, out), q = ⌊√k⌋, d = min{d ≥ 0: q·(q+d) ≥ max(in, out)}",
	}
}

func (kradapterMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	s := float32(o.Float("scaling"))
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		k, q, d := krShape(l.Out, l.In)
		m := &KRAdapter{U: nn.Param(l.Name+".kr_U", k, q), V: nn.Param(l.Name+".kr_V", k, q+d), Q: q, D: d, Scaling: s}
		// torch kaiming_uniform_(a=5): bound = √(2/(1+a²))·√(3/fan_in)
		b := float32(math.Sqrt(2.0/26) * math.Sqrt(3/float64(q+d)))
		rng.FillUniform(m.V, -b, b)
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return at, nil
}

func (kradapterMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		k, q, d := krShape(l.Out, l.In)
		n += int64(k) * int64(2*q+d)
	}
	return n
}

func init() { Register("kradapter", kradapterMethod{}) }
