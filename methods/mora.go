package methods

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// MoRA is high-rank updating with one square matrix (Jiang et al. 2024), as
// the authors' code (kongds/MoRA, peft-mora's LoraLayer._apply_mora and
// get_delta_weight) computes it:
//
//	y = x·W0ᵀ + b + f_decomp(M·f_comp(drop(x))),  M (r̂×r̂), r̂ = ⌊√((In+Out)·r) + ½⌋,
//
// so that r̂² ≈ r·(In+Out), LoRA-r's parameter count, while ΔW can reach
// rank r̂ (sharing) or min(Out, In) (RoPE). M starts at 0 (ΔW = 0); there is
// no α (the authors' MoRA sets scaling to 1 and ignores lora_alpha).
//
// The operators are non-parametric. The authors' code has mora_type 1
// (sharing, their config's default and the README's choice "for large
// ranks", paper Eq. 6), 2–4 (the same sharing with contiguous instead of
// cyclic groups on one or both sides, used by ReMoRA's type switching) and
// 6 (RoPE-based decoupling, the README's choice "for small ranks", Eq. 9);
// the paper's truncation and plain decoupling baselines (its ablation)
// are not in the code. Two are implemented, by the authors' formulas:
//
//   - "sharing" (type 1): x is extended cyclically to P = ⌈In/r̂⌉·r̂
//     entries, x'_p = x_{p mod In}, and compressed by summing its r̂-chunks,
//     c_k = Σ_g x'_{g·r̂+k}; the output repeats M·c cyclically,
//     Δy_i = (M·c)_{i mod r̂}. ΔW = D·M·C has rank ≤ r̂.
//   - "rope" (type 6, r̂ rounded down to even): the chunks are kept apart
//     and chunk g is rotated by RoPE at position g (θ_j = 10000^(−2j/r̂),
//     rotate-half pairing), M maps each rotated chunk, and the outputs are
//     concatenated, truncated to Out or repeated cyclically (period P) when
//     P < Out: ΔW is block diagonal with blocks M·R_g, rank up to min(Out, In).
//
// The default is "rope": the harness's ranks are LoRA's small ones (8),
// where the authors' README and their fine-tuning scripts (r = 8, mora_type
// 6) use it. Where r̂ exceeds In the authors' padding x[..., :pad] runs out
// of entries and their code fails; the cyclic extension here is the same
// wherever theirs runs and defined beyond.
type MoRA struct {
	M    *nn.Tensor // r̂×r̂, applied as c·Mᵀ (the authors' nn.Linear(r̂, r̂))
	RHat int
	Type string // "sharing" or "rope"

	p        int        // ⌈In/r̂⌉·r̂, the cyclically extended input length
	pad, rot []int      // rope: gather indices of x' and of rotate_half(x')
	cos, sin *nn.Tensor // rope: 1×p, sin with rotate_half's sign folded in
	out      []int      // gather indices of the output: i mod r̂ or i mod p

	Dropout float32
	rng     *nn.RNG
}

// moraRank returns r̂ for a layer: ⌊√((In+Out)·r) + ½⌋, even for "rope".
func moraRank(l LayerShape, r int, typ string) int {
	rh := int(math.Sqrt(float64((l.In+l.Out)*r)) + 0.5)
	if typ == "rope" {
		rh = rh / 2 * 2
	}
	return rh
}

// newMoRA builds the adapter of l with its fixed operators.
func newMoRA(l *nn.Linear, r int, typ string) (*MoRA, error) {
	rh := moraRank(Shapes([]*nn.Linear{l})[0], r, typ)
	if rh < 1 || (typ == "rope" && rh < 2) {
		return nil, fmt.Errorf("methods: mora: %s: r̂ = %d, want ≥ 2", l.Name, rh)
	}
	m := &MoRA{M: nn.Param(l.Name+".mora_M", rh, rh), RHat: rh, Type: typ}
	chunks := (l.In + rh - 1) / rh
	m.p = chunks * rh
	period := rh
	switch typ {
	case "sharing":
	case "rope":
		period = m.p
		h := rh / 2
		m.pad, m.rot = make([]int, m.p), make([]int, m.p)
		m.cos, m.sin = nn.New(1, m.p), nn.New(1, m.p)
		for g := range chunks {
			for k := range rh {
				i := g*rh + k
				m.pad[i] = i % l.In
				m.rot[i] = (g*rh + (k+h)%rh) % l.In
				// torch: inv_freq = 1/10000^(arange(0, r̂, 2)/r̂), emb = cat(freqs, freqs).
				invFreq := float32(1 / math.Pow(10000, float64(float32(2*(k%h))/float32(rh))))
				ang := float64(float32(g) * invFreq)
				c, s := float32(math.Cos(ang)), float32(math.Sin(ang))
				if k < h { // rotate_half = cat(−x[h:], x[:h])
					s = -s
				}
				m.cos.Data[i], m.sin.Data[i] = c, s
			}
		}
	default:
		return nil, fmt.Errorf("methods: mora: unknown mora_type %q", typ)
	}
	m.out = make([]int, l.Out)
	for i := range m.out {
		m.out[i] = i % period
	}
	return m, nil
}

// delta returns f_decomp(M·f_comp(x)) (N×Out) for x (N×In).
func (m *MoRA) delta(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	n := x.Rows()
	if m.Type == "sharing" {
		return g.GatherCols(g.MatMul(m.compress(g, x, l.In), m.M, false, true), m.out)
	}
	z := g.Add(g.MulRow(g.GatherCols(x, m.pad), m.cos), g.MulRow(g.GatherCols(x, m.rot), m.sin))
	z = g.MatMul(g.Reshape(z, n*m.p/m.RHat, m.RHat), m.M, false, true)
	return g.GatherCols(g.Reshape(z, n, m.p), m.out)
}

// compress is the sharing compression c_k = Σ_g x_{(g·r̂+k) mod In}.
func (m *MoRA) compress(g *nn.Graph, x *nn.Tensor, in int) *nn.Tensor {
	rh, p, n := m.RHat, m.p, x.Rows()
	f := &nn.Func{Name: "mora_compress",
		Forward: func(y []float32, xs []*nn.Tensor) {
			clear(y)
			for r := range n {
				xr, yr := xs[0].Data[r*in:(r+1)*in], y[r*rh:(r+1)*rh]
				for q := range p {
					yr[q%rh] += xr[q%in]
				}
			}
		},
		Backward: func(dy []float32, xs []*nn.Tensor) {
			if xs[0].Grad == nil {
				return
			}
			for r := range n {
				gx, dr := xs[0].Grad[r*in:(r+1)*in], dy[r*rh:(r+1)*rh]
				for q := range p {
					gx[q%in] += dr[q%rh]
				}
			}
		}}
	return g.Custom(f, []int{n, rh}, x)
}

// Forward computes x·W0ᵀ + b + f_decomp(M·f_comp(drop(x))).
func (m *MoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	return g.Add(l.Base(g, x), m.delta(g, l, g.Dropout(x, m.Dropout, m.rng)))
}

// Params returns M, with weight decay.
func (m *MoRA) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: m.M.Name, T: m.M, LRMul: 1, Decay: true}}
}

// Merged returns W0 + ΔW, ΔW's column j being the update of the unit
// input e_j (the operators are linear).
func (m *MoRA) Merged(l *nn.Linear) []float32 {
	eye := nn.New(l.In, l.In)
	for j := range l.In {
		eye.Data[j*l.In+j] = 1
	}
	dt := m.delta(&nn.Graph{NoGrad: true}, l, eye) // In×Out: ΔWᵀ
	w := append([]float32(nil), l.Weight.Data...)
	for i := range l.Out {
		for j := range l.In {
			w[i*l.In+j] += dt.Data[j*l.Out+i]
		}
	}
	return w
}

type moraMethod struct{}

func (moraMethod) Info() Info {
	return Info{
		Name: "mora", Family: "high-rank", HasRank: true,
		RankMeans: "LoRA-equivalent rank r: M is r̂×r̂, r̂ = ⌊√((in+out)·r) + ½⌋ (even for rope), LoRA-r's parameter count",
		Paper: Paper{Title: "MoRA: High-Rank Updating for Parameter-Efficient Fine-Tuning",
			Authors: "Jiang et al.", Year: 2024, ArXiv: "2405.12130"},
		Summary: "one square M (r̂×r̂, r̂² ≈ r·(in+out)) between non-parametric compress/decompress operators; M = 0",
		Options: []Option{
			intOpt("rank", 8, 1, "LoRA-equivalent rank r that sets r̂"),
			stringOpt("mora_type", "rope", []string{"rope", "sharing"},
				"compression/decompression operators: rope (authors' type 6, for small r) or sharing (type 1, for large r)"),
			{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
		},
		AltOptions:    map[string]any{"rank": 16, "mora_type": "sharing"},
		ParamsFormula: "Σ r̂², r̂ = ⌊√((in+out)·r) + ½⌋ (rope: rounded down to even)",
	}
}

// CheckLayers keeps the rank within min(out, in), as LoRA's, and needs
// r̂ ≥ 2 for rope.
func (moraMethod) CheckLayers(o Options, layers []LayerShape) error {
	if err := checkRankFits("mora", "rank", o.Int("rank"), layers); err != nil {
		return err
	}
	for _, l := range layers {
		if rh := moraRank(l, o.Int("rank"), o.String("mora_type")); rh < 2 {
			return optionError("mora", "rank", fmt.Sprintf("r̂ = %d for layer %s (%d×%d), want ≥ 2", rh, l.Name, l.Out, l.In))
		}
	}
	return nil
}

func (moraMethod) Attach(layers []*nn.Linear, o Options, _ *nn.RNG) (Attachment, error) {
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		m, err := newMoRA(l, o.Int("rank"), o.String("mora_type"))
		if err != nil {
			return nil, err
		}
		m.Dropout = float32(o.Float("dropout"))
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return moraAttachment{at}, nil
}

func (moraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		rh := int64(moraRank(l, o.Int("rank"), o.String("mora_type")))
		n += rh * rh
	}
	return n
}

// moraAttachment gives each adapter its own dropout stream.
type moraAttachment struct{ *layerAttachment }

func (at moraAttachment) SetTraining(rng *nn.RNG) {
	for _, a := range at.adapters {
		m := a.(*MoRA)
		m.rng = childRNG(rng, m.M.Name)
	}
}

func init() { Register("mora", moraMethod{}) }
