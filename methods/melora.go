package methods

import (
	"fmt"

	"peftbench/nn"
)

// MELoRA is mini-ensemble low-rank adaptation (Ren et al., ACL 2024): g
// mini LoRAs (g = n_split) side by side on the diagonal of ΔW,
//
//	ΔW = blockdiag(s·B_1·A_1, …, s·B_g·A_g),  s = α/(r/g),
//
// A_i ((r/g) × In/g) reads the i-th input block and B_i (Out/g × r/g)
// writes the i-th output block, so ΔW reaches rank r with r·(In+Out)/g
// trainable numbers (LoRA's rank-r count divided by g). The rank option is
// the total rank r, each mini LoRA's rank r/g. The authors' code
// (ChasonShi/MELoRA, peft-0.5.0/src/peft/tuners/melora.py) gives every
// mini LoRA its own LoRA scaling lora_alpha/r_i with r_i its own rank,
// which is α/(r/g) here (= g·α/r, not α over the total rank); their
// scripts set lora_alpha = 16. Init as theirs: each A_i Kaiming-uniform
// (a = √5, fan-in In/g), drawn block by block, B = 0, so ΔW = 0. The
// forward never forms ΔW: output block i is s·(x_i·A_iᵀ)·B_iᵀ.
//
// g must divide r, In and Out (CheckLayers refuses otherwise, naming the
// layer), and r/g ≤ min(In, Out)/g.
type MELoRA struct {
	A, B  *nn.Tensor // melora_A (r × In/g: A_1 … A_g stacked), melora_B (Out × r/g: B_1 … B_g stacked)
	Rank  int
	G     int
	Scale float32
}

// Forward computes x·W0ᵀ + b + s·[(x_1·A_1ᵀ)·B_1ᵀ | … | (x_g·A_gᵀ)·B_gᵀ].
func (m *MELoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	k, rb, ib, ob := m.G, m.Rank/m.G, l.In/m.G, l.Out/m.G
	outs := make([]*nn.Tensor, k)
	for i := range k {
		xi := x
		if k > 1 {
			xi = g.SliceCols(x, i*ib, (i+1)*ib)
		}
		u := g.MatMul(xi, g.SliceRows(m.A, i*rb, (i+1)*rb), false, true)     // N × r/g
		outs[i] = g.MatMul(u, g.SliceRows(m.B, i*ob, (i+1)*ob), false, true) // N × Out/g
	}
	d := outs[0]
	if k > 1 {
		d = g.ConcatCols(outs...)
	}
	return g.Add(l.Base(g, x), g.Scale(d, m.Scale))
}

// Params returns melora_A and melora_B, both with weight decay.
func (m *MELoRA) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: m.A.Name, T: m.A, LRMul: 1, Decay: true},
		{Name: m.B.Name, T: m.B, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + blockdiag(s·B_i·A_i).
func (m *MELoRA) Merged(l *nn.Linear) []float32 {
	w := append([]float32(nil), l.Weight.Data...)
	k, rb, ib, ob := m.G, m.Rank/m.G, l.In/m.G, l.Out/m.G
	s := float64(m.Scale)
	for i := range k {
		for o := range ob {
			row := w[(i*ob+o)*l.In+i*ib:]
			for j := range ib {
				var acc float64
				for p := range rb {
					acc += float64(m.B.Data[(i*ob+o)*rb+p]) * float64(m.A.Data[(i*rb+p)*ib+j])
				}
				row[j] = float32(float64(row[j]) + s*acc)
			}
		}
	}
	return w
}

type meloraMethod struct{}

func (meloraMethod) Info() Info {
	return Info{
		Name: "melora", Family: "lora", HasRank: true,
		RankMeans: "total rank r of ΔW: g mini LoRAs of rank r/g each",
		Paper: Paper{Title: "MELoRA: Mini-Ensemble Low-Rank Adapters for Parameter-Efficient Fine-Tuning",
			Authors: "Ren et al.", Year: 2024, ArXiv: "2402.17263"},
		Summary: "ΔW = blockdiag(B_1A_1, …, B_gA_g): g mini LoRAs of rank r/g on the diagonal, rank r for r·(in+out)/g parameters; s = α/(r/g)",
		Options: []Option{
			intOpt("rank", 8, 1, "total rank r (each mini LoRA r/g); n_split must divide it"),
			floatOpt("alpha", 16, fptr(0), nil, "scaling numerator α, s = α/(r/g) per mini LoRA as the authors' code (their scripts: 16); a number or a multiple of the rank (\"2r\")"),
			intOpt("n_split", 2, 1, "g: number of mini LoRAs; must divide the rank and every layer's in and out"),
		},
		AltOptions:    map[string]any{"rank": 8, "alpha": 8, "n_split": 4},
		ParamsFormula: "Σ r·(in+out)/g",
	}
}

// CheckLayers refuses an n_split that does not divide the rank or a
// layer's in or out features, and a rank above min(out, in).
func (meloraMethod) CheckLayers(o Options, layers []LayerShape) error {
	g, r := o.Int("n_split"), o.Int("rank")
	if r%g != 0 {
		return optionError("melora", "n_split", fmt.Sprintf("%d does not divide the rank %d", g, r))
	}
	for _, l := range layers {
		if l.In%g != 0 || l.Out%g != 0 {
			return optionError("melora", "n_split", fmt.Sprintf("%d does not divide the in and out features of layer %s (%d×%d)", g, l.Name, l.Out, l.In))
		}
	}
	return checkRankFits("melora", "rank", r, layers)
}

func (meloraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	k, r := o.Int("n_split"), o.Int("rank")
	s := float32(o.Float("alpha") / float64(r/max(k, 1)))
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		if k <= 0 || r%k != 0 || l.In%k != 0 || l.Out%k != 0 {
			return nil, fmt.Errorf("methods: melora: n_split %d does not divide rank %d or layer %s (%d×%d)", k, r, l.Name, l.Out, l.In)
		}
		rb, ib := r/k, l.In/k
		m := &MELoRA{A: nn.Param(l.Name+".melora_A", r, ib), B: nn.Param(l.Name+".melora_B", l.Out, rb),
			Rank: r, G: k, Scale: s}
		ai := nn.New(rb, ib)
		for i := range k { // the authors draw A_i mini LoRA by mini LoRA
			rng.KaimingUniform(ai, ib)
			copy(m.A.Data[i*rb*ib:], ai.Data)
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return at, nil
}

func (meloraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	r, k := int64(o.Int("rank")), int64(o.Int("n_split"))
	var n int64
	for _, l := range layers {
		n += r * int64(l.In+l.Out) / k
	}
	return n
}

func init() { Register("melora", meloraMethod{}) }
