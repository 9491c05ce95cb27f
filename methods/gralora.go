package methods

import (
	"fmt"

	"peftbench/nn"
)

// GraLoRA is granular low-rank adaptation (Jung et al. 2025, HF PEFT's
// peft.tuners.gralora): the weight is cut into a k×k grid of blocks
// (Out/k × In/k each, k = gralora_k) and every block gets its own low-rank
// pair of rank r/k:
//
//	ΔW[j, n] = s · B_j[:, n-th r/k columns] · A_n[j-th r/k rows],   s = α/(r + hybrid_r),
//
// where A_n (r × In/k) reads the n-th input block and B_j (Out/k × r)
// writes the j-th output block; sub-rank group j of A_n and group n of
// B_j belong to block (j, n) alone. The trainable count is LoRA's,
// r·(In+Out), while the total rank grows to k·r. As HF, the forward pass
// never forms ΔW: u_n = x_n·A_nᵀ, the sub-rank groups are exchanged
// (v_j = [u_0 group j | … | u_{k−1} group j]), and output block j is
// v_j·B_jᵀ. Tensors keep HF's layouts: gralora_A is (k, In/k, r) (A_nᵀ
// stacked), gralora_B is (k, r, Out/k) (B_jᵀ stacked).
//
// hybrid_r > 0 adds a plain LoRA pair (hybrid_r × In, Out × hybrid_r)
// under the same scale (Hybrid GraLoRA).
//
// Init as HF PEFT's init_weights: every A_n (r × In/k) Kaiming-uniform
// (a = √5, fan_in In/k), drawn block by block, B = 0, the hybrid A
// Kaiming-uniform (fan_in In) and its B = 0, so ΔW = 0 at step 0;
// init_weights = false also draws B Kaiming-uniform (HF's testing init).
//
// HF requires k to divide r, In and Out (CheckLayers refuses otherwise;
// k = 2, the default, fits every hidden layer of every task; the 5-output
// head of safety-guard and teacher-shift fits only k = 1). Like HF, a rank
// above min(out, in) is allowed (the blocks are then over-parametrised):
// HF's default r = 32 exceeds the 16 inputs of those tasks' fc1.
type GraLoRA struct {
	A, B    *nn.Tensor // gralora_A (k, In/k, r), gralora_B (k, r, Out/k)
	AG, BG  *nn.Tensor // hybrid pair (hybrid_r × In, Out × hybrid_r), or nil
	Rank    int
	K       int
	Scale   float32
	Dropout float32

	rng *nn.RNG
}

// delta returns drop(x)·ΔWᵀ/s of the block part, N × Out.
func (m *GraLoRA) delta(g *nn.Graph, l *nn.Linear, xd *nn.Tensor) *nn.Tensor {
	k, r := m.K, m.Rank
	inb, outb, rb := l.In/k, l.Out/k, r/k
	a := g.Reshape(m.A, k*inb, r)
	b := g.Reshape(m.B, k*r, outb)
	us := make([]*nn.Tensor, k)
	for n := range k {
		xn := xd
		if k > 1 {
			xn = g.SliceCols(xd, n*inb, (n+1)*inb)
		}
		us[n] = g.MatMul(xn, g.SliceRows(a, n*inb, (n+1)*inb), false, false) // N × r
	}
	outs := make([]*nn.Tensor, k)
	parts := make([]*nn.Tensor, k)
	for j := range k {
		v := us[0]
		if k > 1 {
			for n := range k {
				parts[n] = g.SliceCols(us[n], j*rb, (j+1)*rb)
			}
			v = g.ConcatCols(parts...)
		}
		outs[j] = g.MatMul(v, g.SliceRows(b, j*r, (j+1)*r), false, false) // N × Out/k
	}
	if k == 1 {
		return outs[0]
	}
	return g.ConcatCols(outs...)
}

// Forward computes x·W0ᵀ + b + s·(block part + hybrid part).
func (m *GraLoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	xd := g.Dropout(x, m.Dropout, m.rng)
	var y *nn.Tensor
	if m.AG != nil {
		y = g.LowRankLinear(x, l.Weight, l.Bias, xd, m.AG, m.BG, m.Scale)
	} else {
		y = l.Base(g, x)
	}
	return g.Add(y, g.Scale(m.delta(g, l, xd), m.Scale))
}

// Params returns gralora_A, gralora_B and the hybrid pair.
func (m *GraLoRA) Params() []nn.ParamRef {
	ps := []nn.ParamRef{
		{Name: m.A.Name, T: m.A, LRMul: 1, Decay: true},
		{Name: m.B.Name, T: m.B, LRMul: 1, Decay: true},
	}
	if m.AG != nil {
		ps = append(ps, nn.ParamRef{Name: m.AG.Name, T: m.AG, LRMul: 1, Decay: true},
			nn.ParamRef{Name: m.BG.Name, T: m.BG, LRMul: 1, Decay: true})
	}
	return ps
}

// Merged returns W0 + s·ΔW, block by block.
func (m *GraLoRA) Merged(l *nn.Linear) []float32 {
	w := append([]float32(nil), l.Weight.Data...)
	k, r := m.K, m.Rank
	inb, outb, rb := l.In/k, l.Out/k, r/k
	s := float64(m.Scale)
	for j := range k {
		for n := range k {
			for o := range outb {
				row := w[(j*outb+o)*l.In+n*inb:]
				for i := range inb {
					var acc float64
					for q := range rb {
						acc += float64(m.B.Data[(j*r+n*rb+q)*outb+o]) * float64(m.A.Data[(n*inb+i)*r+j*rb+q])
					}
					row[i] = float32(float64(row[i]) + s*acc)
				}
			}
		}
	}
	if m.AG != nil {
		addLowRank(w, m.BG.Data, m.AG.Data, l.Out, m.AG.Shape[0], l.In, s)
	}
	return w
}

type graloraMethod struct{}

func (graloraMethod) Info() Info {
	return Info{
		Name: "gralora", Family: "lora", HasRank: true, RankAboveMin: true,
		Paper: Paper{Title: "GraLoRA: Granular Low-Rank Adaptation for Parameter-Efficient Fine-Tuning",
			Authors: "Jung et al.", Year: 2025, ArXiv: "2505.20355"},
		Summary:    "a k×k grid of independent rank-r/k LoRA blocks, s = α/(r+hybrid_r): LoRA's parameter count, k·r total rank",
		AltOptions: map[string]any{"rank": 8, "alpha": 16, "gralora_k": 4, "hybrid_r": 4},
		Options: []Option{
			intOpt("rank", 32, 1, "total rank r of the block pairs (r/k per block); k must divide it"),
			floatOpt("alpha", 64, fptr(0), nil, "scaling numerator α, s = α/(r + hybrid_r); a number or a multiple of the rank (\"2r\")"),
			intOpt("gralora_k", 2, 1, "k: the weight is a k×k grid of blocks; must divide r, in and out"),
			intOpt("hybrid_r", 0, 0, "rank of an added plain LoRA pair (Hybrid GraLoRA)"),
			{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training (gralora_dropout)"},
			boolOpt("init_weights", true, "B = 0 (ΔW = 0 at step 0); false draws B Kaiming-uniform too"),
		},
		ParamsFormula: "Σ (r + hybrid_r)·(in+out)",
	}
}

// CheckLayers refuses a gralora_k that does not divide the rank or a
// layer's in or out.
func (graloraMethod) CheckLayers(o Options, layers []LayerShape) error {
	k, r := o.Int("gralora_k"), o.Int("rank")
	if r%k != 0 {
		return optionError("gralora", "gralora_k", fmt.Sprintf("%d does not divide the rank %d", k, r))
	}
	for _, l := range layers {
		if l.In%k != 0 || l.Out%k != 0 {
			return optionError("gralora", "gralora_k", fmt.Sprintf("%d does not divide the in and out features of layer %s (%d×%d)", k, l.Name, l.Out, l.In))
		}
	}
	return nil
}

func (graloraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	k, r, hr := o.Int("gralora_k"), o.Int("rank"), o.Int("hybrid_r")
	init := o.Bool("init_weights")
	var ms []*GraLoRA
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		if r%k != 0 || l.In%k != 0 || l.Out%k != 0 {
			return nil, fmt.Errorf("methods: gralora: gralora_k %d does not divide rank %d or layer %s (%d×%d)", k, r, l.Name, l.Out, l.In)
		}
		inb, outb := l.In/k, l.Out/k
		m := &GraLoRA{Rank: r, K: k, Scale: float32(o.Float("alpha") / float64(r+hr)), Dropout: float32(o.Float("dropout"))}
		m.A = nn.Param(l.Name+".gralora_A", k, inb, r)
		m.B = nn.Param(l.Name+".gralora_B", k, r, outb)
		an, bn := nn.New(r, inb), nn.New(outb, r)
		for n := range k { // HF draws A_n (r × In/k), then B_n, block by block
			rng.KaimingUniform(an, inb)
			graloraTransposeInto(m.A.Data[n*inb*r:(n+1)*inb*r], an.Data, r, inb)
			if !init {
				rng.KaimingUniform(bn, r)
				graloraTransposeInto(m.B.Data[n*r*outb:(n+1)*r*outb], bn.Data, outb, r)
			}
		}
		if hr > 0 {
			m.AG = nn.Param(l.Name+".gralora_A_general.weight", hr, l.In)
			m.BG = nn.Param(l.Name+".gralora_B_general.weight", l.Out, hr)
			rng.KaimingUniform(m.AG, l.In)
			if !init {
				rng.KaimingUniform(m.BG, hr)
			}
		}
		ms = append(ms, m)
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return &graloraAttachment{at, ms}, nil
}

// graloraTransposeInto writes the transpose of src (rows × cols) to dst.
func graloraTransposeInto(dst, src []float32, rows, cols int) {
	for i := range rows {
		for j := range cols {
			dst[j*rows+i] = src[i*cols+j]
		}
	}
}

func (graloraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	r := int64(o.Int("rank") + o.Int("hybrid_r"))
	var n int64
	for _, l := range layers {
		n += r * int64(l.In+l.Out)
	}
	return n
}

// graloraAttachment adds dropout's random stream to layerAttachment.
type graloraAttachment struct {
	*layerAttachment
	adapters []*GraLoRA
}

func (at *graloraAttachment) SetTraining(rng *nn.RNG) {
	for _, m := range at.adapters {
		m.rng = childRNG(rng, m.A.Name)
	}
}

func init() { Register("gralora", graloraMethod{}) }
