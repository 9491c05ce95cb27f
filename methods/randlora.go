package methods

import (
	"fmt"
	"math"
	"slices"

	"peftbench/kernels"
	"peftbench/nn"
)

// RandLoRA is full-rank adaptation from shared frozen random bases
// (Albert et al. 2025, HF PEFT's peft.tuners.randlora):
//
//	ΔW = (α/r) · Σ_{i=1..n} B_i · Λ_i · A · Γ_i,   n = ⌈min(out, in)/r⌉,
//
// oriented so that A and Γ act on the layer's smaller side: with
// d = min(out, in) and D = max(out, in), A (r×d) and the B_i (D×r) are
// frozen random, and per layer only Λ_i = diag(λ_i) (λ: r×n) and
// Γ_i = diag(γ_i) (γ: n×d) train. n·r ≥ d, so ΔW can reach full rank d.
// When d = in, ΔW = M; when out < in, ΔW = Mᵀ, M = Σ_i B_i Λ_i A Γ_i (D×d),
// as HF's get_scaled_bases swaps the factors.
//
// The pairing of B's columns with A's rows is HF's: HF flattens the scaled
// A, λ[:, :, None]·A·γ[None] of shape (r, n, d), as (r·n, d) (row
// j = k·n + i) and B (D, n, r) as (D, n·r) (column j = i·r + k), and
// multiplies the two, so column j of the flat B meets row j of the flat
// scaled A. That is the formula above with each B_i's columns re-indexed
// (B_i[:, k] = B_flat[:, k·n + i]): a fixed permutation of iid random
// columns, so the method is the paper's; following HF's order makes the
// same λ and γ give HF's ΔW.
//
// The bases are ONE shared pair drawn exactly as HF PEFT's RandLoraModel
// draws it, sized to the elementwise largest (out, in) over the targeted
// layers (d_s = min, D_s = max of that pair, n_s = ⌈d_s/r⌉), from
// torch.Generator().manual_seed(projection_prng_key), reproduced bit for
// bit with nn.TorchGenerator:
//
//   - dense (default): A (r, 1, d_s) then n_s blocks (D_s, 1, r) for B,
//     each kaiming_uniform_(a=√5) (bound 1/√fan_in: fan_in d_s for A, r for
//     B) in bfloat16, since HF's _kaiming_init creates its tensors in bf16
//     whenever accelerate reports bf16 support (always on a CPU); then
//     A/std(A) and B/std(B) in bf16 (std unbiased), cast to float32 when
//     HF moves them to the layer's dtype;
//   - sparse: torch.rand of A (r, 1, d_s) then B (D_s, n_s, r) in float32,
//     entries below 1/(2s) set to −1, above 1 − 1/(2s) to +1, the rest 0,
//     s = 3 (sparse) or √d_s (very_sparse), each then divided by its std.
//
// A layer uses the slices A[:, 0, :d] and B[:D, :n, :]. λ starts at 0 and
// γ at 1/max(n, d) (HF's init_weights), so ΔW = 0 at step 0;
// init_weights = false draws λ ~ N(0, 1) from the trial's stream and
// γ = 1/max(out, in), as HF does with its global generator. α defaults to
// HF's randlora_alpha = 640 (20× HF's default r = 32), a constant, so the
// scale α/r grows as the rank axis shrinks r; give alpha as "20r" to keep
// HF's recommended ratio.
//
// Speed: the update has rank n·r ≥ d, so the adapter's two products cost
// about twice the frozen layer's matmul (HF computes the same products);
// a step costs roughly 2–3× LoRA's.
type RandLoRA struct {
	Lambda, Gamma *nn.Tensor // trainable: r×n, n×d
	// A is this layer's frozen slice A[:, 0, :d] (r×d). Bf is the flat
	// B[:D, :n, :] (D×n·r) when d = in, its transpose (n·r×D) otherwise.
	A, Bf   *nn.Tensor
	Rank    int
	Bases   int
	Scale   float32
	Dropout float32
	// inSmall: d = in (ΔW = M), else d = out (ΔW = Mᵀ).
	inSmall bool

	f   *nn.Func
	rng *nn.RNG
}

// scaled returns the scaled A, λ[k, i]·A[k, :]·γ[i, :] at row k·n + i
// (n·r × d), or its transpose (d × n·r) when d = out.
func (m *RandLoRA) scaled(g *nn.Graph) *nn.Tensor {
	j, d := m.Rank*m.Bases, m.A.Shape[1]
	if m.inSmall {
		return g.Custom(m.f, []int{j, d}, m.Lambda, m.Gamma, m.A)
	}
	return g.Custom(m.f, []int{d, j}, m.Lambda, m.Gamma, m.A)
}

// Forward computes x·W0ᵀ + b + s·drop(x)·ΔWᵀ through the two thin products.
func (m *RandLoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	xd := g.Dropout(x, m.Dropout, m.rng)
	sa := m.scaled(g)
	if m.inSmall { // ΔW = B_flat · Ã
		return g.LowRankLinear(x, l.Weight, l.Bias, xd, sa, m.Bf, m.Scale)
	}
	// ΔW = Ãᵀ · B_flatᵀ
	return g.LowRankLinear(x, l.Weight, l.Bias, xd, m.Bf, sa, m.Scale)
}

// Params returns λ and γ.
func (m *RandLoRA) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: m.Lambda.Name, T: m.Lambda, LRMul: 1, Decay: true},
		{Name: m.Gamma.Name, T: m.Gamma, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + s·ΔW.
func (m *RandLoRA) Merged(l *nn.Linear) []float32 {
	g := &nn.Graph{NoGrad: true}
	sa := m.scaled(g)
	w := append([]float32(nil), l.Weight.Data...)
	j := m.Rank * m.Bases
	if m.inSmall {
		addLowRank(w, m.Bf.Data, sa.Data, l.Out, j, l.In, float64(m.Scale))
	} else {
		addLowRank(w, sa.Data, m.Bf.Data, l.Out, j, l.In, float64(m.Scale))
	}
	return w
}

// randloraScaledA is HF's UniqueBaseGrad: inputs λ (r×n), γ (n×d) and A
// (r×d); output row k·n + i is λ[k, i]·A[k, :]·γ[i, :], transposed when
// transposed is set.
func randloraScaledA(transposed bool) *nn.Func {
	var tmp, row []float32 // scratch: the untransposed output or gradient, one row
	rows := func(y []float32, lam, gam, a []float32, r, n, d int) {
		for k := range r {
			ak := a[k*d : (k+1)*d]
			for i := range n {
				yr := y[(k*n+i)*d : (k*n+i+1)*d]
				copy(yr, ak)
				kernels.Scale(lam[k*n+i], yr)         // λ·A, then
				kernels.Mul(yr, yr, gam[i*d:(i+1)*d]) // ·γ, as torch's λ[:, :, None]·A·γ[None]
			}
		}
	}
	return &nn.Func{
		Name: "randlora_scaled_A",
		Forward: func(y []float32, in []*nn.Tensor) {
			r, n, d := in[0].Shape[0], in[0].Shape[1], in[2].Shape[1]
			if !transposed {
				rows(y, in[0].Data, in[1].Data, in[2].Data, r, n, d)
				return
			}
			tmp = slices.Grow(tmp[:0], len(y))[:len(y)]
			rows(tmp, in[0].Data, in[1].Data, in[2].Data, r, n, d)
			randloraTranspose(y, tmp, r*n, d)
		},
		Backward: func(dy []float32, in []*nn.Tensor) {
			lam, gam, a := in[0].Data, in[1].Data, in[2].Data
			dlam, dgam := in[0].Grad, in[1].Grad
			r, n, d := in[0].Shape[0], in[0].Shape[1], in[2].Shape[1]
			if transposed {
				tmp = slices.Grow(tmp[:0], len(dy))[:len(dy)]
				randloraTranspose(tmp, dy, d, r*n)
				dy = tmp
			}
			row = slices.Grow(row[:0], d)[:d]
			for k := range r {
				ak := a[k*d : (k+1)*d]
				for i := range n {
					j := k*n + i
					kernels.Mul(row, dy[j*d:(j+1)*d], ak) // dY ⊙ A
					if dlam != nil {
						dlam[j] += kernels.Dot(row, gam[i*d:(i+1)*d])
					}
					if dgam != nil {
						kernels.Axpy(lam[j], row, dgam[i*d:(i+1)*d])
					}
				}
			}
		},
	}
}

// randloraTranspose writes the transpose of src (rows × cols) to dst, in
// 32×32 tiles.
func randloraTranspose(dst, src []float32, rows, cols int) {
	const t = 32
	for i0 := 0; i0 < rows; i0 += t {
		for j0 := 0; j0 < cols; j0 += t {
			for i := i0; i < min(i0+t, rows); i++ {
				for j := j0; j < min(j0+t, cols); j++ {
					dst[j*rows+i] = src[i*cols+j]
				}
			}
		}
	}
}

// randloraNumBases is ⌈d/r⌉, HF's num_bases.
func randloraNumBases(d, r int) int { return (d + r - 1) / r }

// randloraBases returns the shared frozen bases for layers, as HF PEFT's
// RandLoraModel draws them (see RandLoRA): A (r×d_s, HF's (r, 1, d_s)) and
// B (D_s×n_s×r).
func randloraBases(layers []LayerShape, r int, key uint64, sparse, verySparse bool) (a, b *nn.Tensor) {
	var maxOut, maxIn int
	for _, l := range layers {
		maxOut, maxIn = max(maxOut, l.Out), max(maxIn, l.In)
	}
	dS, DS := min(maxOut, maxIn), max(maxOut, maxIn)
	nS := randloraNumBases(dS, r)
	gen := nn.NewTorchGenerator(key)
	a, b = nn.New(r, dS), nn.New(DS, nS, r)
	a.Name, b.Name = "randlora_A", "randlora_B"
	if sparse || verySparse {
		s := 3.0
		if verySparse {
			s = math.Sqrt(float64(dS))
		}
		lo, hi := float32(1/(2*s)), float32(1-1/(2*s))
		for _, t := range []*nn.Tensor{a, b} {
			gen.FillUniform(t, 0, 1)
			for i, v := range t.Data {
				switch {
				case v < lo:
					t.Data[i] = -1
				case v > hi:
					t.Data[i] = 1
				default:
					t.Data[i] = 0
				}
			}
			sd := float32(randloraStd(t.Data))
			for i := range t.Data {
				t.Data[i] /= sd
			}
		}
		return a, b
	}
	randloraBF16Kaiming(gen, a.Data, dS)
	for i := range nS { // torch.cat of n_s draws (D_s, 1, r) along dim 1
		blk := make([]float32, DS*r)
		randloraBF16Kaiming(gen, blk, r)
		for m := range DS {
			copy(b.Data[(m*nS+i)*r:(m*nS+i+1)*r], blk[m*r:(m+1)*r])
		}
	}
	for _, t := range []*nn.Tensor{a, b} {
		sd := randloraBF16(float32(randloraStd(t.Data)))
		for i, v := range t.Data {
			t.Data[i] = randloraBF16(v / sd)
		}
	}
	return a, b
}

// randloraBF16 rounds f to bfloat16 (round to nearest even, as c10::BFloat16),
// returned as the float32 of the same value.
func randloraBF16(f float32) float32 {
	u := math.Float32bits(f)
	if f != f {
		return f
	}
	u += 0x7fff + (u>>16)&1
	return math.Float32frombits(u &^ 0xffff)
}

// randloraBF16Kaiming fills t as torch.nn.init.kaiming_uniform_(a=√5,
// generator=gen) does a bfloat16 tensor with the given fan-in: bound =
// √3·gain/√fan_in, gain = √(2/(1+a²)), from and to rounded to bf16, and
// each draw u·(to − from) + from with u the low 8 bits of a 32-bit draw
// over 256 (ATen's uniform_real for bf16: exact in float32), rounded to
// bf16.
func randloraBF16Kaiming(gen *nn.TorchGenerator, t []float32, fanIn int) {
	a := math.Sqrt(5)
	gain := math.Sqrt(2 / (1 + a*a))
	bound := math.Sqrt(3) * (gain / math.Sqrt(float64(fanIn)))
	from, to := randloraBF16(float32(-bound)), randloraBF16(float32(bound))
	width := randloraBF16(to - from)
	for i := range t {
		u := float32(gen.Uint32()&0xff) / 256
		t[i] = randloraBF16(u*width + from)
	}
}

// randloraStd is the sample standard deviation (n−1) in float64.
func randloraStd(x []float32) float64 {
	var mean float64
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	var ss float64
	for _, v := range x {
		d := float64(v) - mean
		ss += d * d
	}
	return math.Sqrt(ss / float64(len(x)-1))
}

type randloraMethod struct{}

func (randloraMethod) Info() Info {
	return Info{
		Name: "randlora", Family: "vector-scaling", HasRank: true, RankAboveMin: true,
		Paper: Paper{Title: "RandLoRA: Full-rank parameter-efficient fine-tuning of large models",
			Authors: "Albert et al.", Year: 2025, ArXiv: "2502.00987"},
		Summary:    "ΔW = (α/r)·Σ_i B_i·Λ_i·A·Γ_i over ⌈min(out,in)/r⌉ shared frozen random bases; only the diagonal λ and γ train, full rank possible",
		RankMeans:  "rank r of each random basis; the number of bases is ⌈min(out,in)/r⌉, so fewer trainable parameters as r grows",
		AltOptions: map[string]any{"rank": 8, "alpha": 160, "sparse": true, "projection_prng_key": 5},
		Options: []Option{
			intOpt("rank", 32, 1, "rank r of each random basis (HF's r)"),
			floatOpt("alpha", 640, fptr(0), nil, "scale numerator α, s = α/r (HF's randlora_alpha; HF suggests 20·r: \"20r\")"),
			intOpt("projection_prng_key", 0, 0, "seed of the shared frozen bases (torch.Generator)"),
			boolOpt("sparse", false, "ternary sparse bases (−1, 0, +1 with probabilities 1/6, 2/3, 1/6)"),
			boolOpt("very_sparse", false, "ternary bases with ±1 probability 1/(2√d) each (d: the smaller dimension of the largest targeted shape)"),
			{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training (randlora_dropout)"},
			boolOpt("init_weights", true, "λ = 0 (ΔW = 0 at step 0); false draws λ ~ N(0, 1)"),
		},
		ParamsFormula: "Σ ⌈min(out,in)/r⌉·(r + min(out,in))",
	}
}

func (randloraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	a, b := randloraBases(Shapes(layers), r, uint64(o.Int("projection_prng_key")), o.Bool("sparse"), o.Bool("very_sparse"))
	dS, nS := a.Shape[1], b.Shape[1]
	type shape struct{ out, in int }
	slices := map[shape][2]*nn.Tensor{}
	var ms []*RandLoRA
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		d, D := min(l.Out, l.In), max(l.Out, l.In)
		n := randloraNumBases(d, r)
		m := &RandLoRA{Rank: r, Bases: n, Scale: float32(o.Float("alpha") / float64(r)),
			Dropout: float32(o.Float("dropout")), inSmall: d == l.In}
		sh := shape{l.Out, l.In}
		ab, ok := slices[sh]
		if !ok {
			sa := nn.New(r, d)
			sa.Name = fmt.Sprintf("randlora_A[:, 0, :%d]", d)
			for k := range r {
				copy(sa.Data[k*d:(k+1)*d], a.Data[k*dS:k*dS+d])
			}
			j := n * r
			var sb *nn.Tensor
			if m.inSmall {
				sb = nn.New(D, j)
			} else {
				sb = nn.New(j, D)
			}
			sb.Name = fmt.Sprintf("randlora_B[:%d, :%d, :]", D, n)
			for p := range D {
				for c := range j { // c = i·r + k
					v := b.Data[p*nS*r+c]
					if m.inSmall {
						sb.Data[p*j+c] = v
					} else {
						sb.Data[c*D+p] = v
					}
				}
			}
			ab = [2]*nn.Tensor{sa, sb}
			slices[sh] = ab
		}
		m.A, m.Bf = ab[0], ab[1]
		m.Lambda = nn.Param(l.Name+".randlora_lambda", r, n)
		m.Gamma = nn.Param(l.Name+".randlora_gamma", n, d)
		if o.Bool("init_weights") {
			randloraFill(m.Gamma.Data, float32(1/float64(max(n, d))))
		} else {
			rng.FillNormal(m.Lambda, 0, 1)
			randloraFill(m.Gamma.Data, float32(1/float64(D)))
		}
		m.f = randloraScaledA(!m.inSmall)
		ms = append(ms, m)
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return &randloraAttachment{at, ms, a, b}, nil
}

func randloraFill(x []float32, v float32) {
	for i := range x {
		x[i] = v
	}
}

func (randloraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	r := o.Int("rank")
	var n int64
	for _, l := range layers {
		d := min(l.Out, l.In)
		n += int64(randloraNumBases(d, r)) * int64(r+d)
	}
	return n
}

// randloraAttachment holds the shared frozen bases and the adapters'
// dropout streams.
type randloraAttachment struct {
	*layerAttachment
	adapters []*RandLoRA
	// A (r×d_s) and B (D_s×n_s×r): the shared frozen bases.
	A, B *nn.Tensor
}

func (at *randloraAttachment) SetTraining(rng *nn.RNG) {
	for _, m := range at.adapters {
		m.rng = childRNG(rng, m.Lambda.Name)
	}
}

func init() { Register("randlora", randloraMethod{}) }
