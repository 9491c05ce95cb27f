package methods

import (
	"math"

	"peftbench/kernels"
	"peftbench/nn"
)

// Flora (Hao, Cao and Mou, ICML 2024, "Low-Rank Adapters Are Secretly
// Gradient Compressors") here is the paper's momentum compression on Adam
// ("Flora-Adam"): each targeted weight W (m×n) keeps its momentum only as a
// rank-r random projection C, resampled every κ steps with the momentum
// carried over (the paper's momentum transfer), while Adam's second moment
// stays elementwise. As in the authors' flora_opt, the momentum is taken of
// the second-moment-normalised gradient u, not of G. At the weight's step t
// (from 1):
//
//	A_k ~ N(0, 1/r): r×m if m < n (down(X) = A·X, r×n; up(C) = Aᵀ·C),
//	                 else n×r    (down(X) = X·A, m×r; up(C) = C·Aᵀ)
//	v ← β2·v + (1−β2)·G²,  u = G / (√(v/(1−β2ᵗ)) + ε)
//	M = β1·up_k(C) + (1−β1)·u                 (the update's momentum)
//	if t mod κ = 0:  C ← down_{k+1}(up_k(C)), k ← k+1      (resample)
//	C ← β1·C + (1−β1)·down_k(u)
//	U = M/(1−β1ᵗ),  U ← U / max(1, RMS(U)/d)
//	W ← W·(1 − lr·wd) − lr·U
//
// so, counting steps from 1, projection k decompresses the momentum for the
// updates of steps kκ+1 … (k+1)κ and compresses steps kκ … (k+1)κ−1 (step
// kκ, k ≥ 1, is the resample: its update still reads projection k−1). The
// order (the update mixes the current u with the decompressed previous
// momentum; resampling between the update and the compression), the
// momentum of the normalised update and the update clipping (threshold d =
// clip_threshold, 1) are the authors' flora_opt torch optimiser's, which
// builds Flora on Adafactor; this method puts Adam's second moment (the
// trial's β2 and ε, bias-corrected) where flora_opt has Adafactor's factored
// one with its decay schedule and parameter-scaled step size, and adds
// Adam's first-moment bias correction 1/(1−β1ᵗ) (Adafactor has none), so
// that β, ε, weight decay and per-parameter learning rates are the trial's
// AdamW's and only the momentum is compressed. A decompressed momentum is an
// unbiased but noisy estimate, about √(d/r) times the size of u elementwise
// (d the compressed side), which the clipping bounds. (Compressing Adam's m
// of the raw gradient and dividing by √v̂ instead, the literal reading of
// the paper's Algorithm 2 on Adam, divides that noise by √v̂ ≈ 0 wherever a
// unit's gradient vanishes, a dead ReLU unit's row or column: on the
// cross-check's MLP the update's RMS reached ~4·10⁴ before clipping, and
// without clipping the reference models diverged in a few steps.) Like flora_opt it compresses the smaller side, regenerates the
// projections from their seed at every step instead of storing them, and
// leaves a weight with r ≥ min(m, n) uncompressed (plain AdamW); it does
// not skip embedding-shaped weights (flora_opt: max/min > 4), since only
// linear layers are targeted here.
//
// The projection for the i-th targeted weight (attachment order, of L) in
// interval k comes from torch.Generator().manual_seed(projection_seed + 1 +
// i + k·L): 2·r·d uniforms u in memory order (Tensor.uniform_, reproduced
// by nn.TorchGenerator), z_j = √(−2·ln(1 − u_j))·cos(2π·u_{rd+j}) in
// float64, A = z/√r rounded to float32 (Box–Muller over torch's uniforms;
// flora_opt's torch.randn and next_seed chain are not reproduced). The
// optimiser state is C and v: 4·(r·n + m·n) bytes for m < n (4·(m·r + m·n)
// otherwise) against AdamW's 8·m·n; the projections are not held.
type floraMethod struct{}

func (floraMethod) Info() Info {
	return Info{
		Name: "flora", Family: "optimizer", HasRank: true, RankAboveMin: true,
		RankMeans: "rank r of the random projection of Adam's first moment (r ≥ min(out, in): uncompressed AdamW)",
		Paper: Paper{Title: "Flora: Low-Rank Adapters Are Secretly Gradient Compressors",
			Authors: "Hao et al.", Year: 2024, ArXiv: "2402.03293"},
		Summary: "full-parameter W, Adam's first moment compressed by a random Gaussian projection resampled every κ steps",
		Options: []Option{
			intOpt("rank", 128, 1, "rank r of the projection (flora_opt configs/optimizer/flora.yaml tau: 128)"),
			intOpt("kappa", 1000, 1, "steps κ between resampled projections (flora_opt: 1000)"),
			intOpt("projection_seed", 0, 0, "seed of the projections (flora_opt: seed 0)"),
			floatOpt("clip_threshold", 1.0, fptr(0), nil, "Adafactor's update clipping: each weight's update scaled to RMS ≤ d (flora_opt: 1; 0: off)"),
		},
		AltOptions:    map[string]any{"rank": 4, "kappa": 2, "projection_seed": 7},
		ParamsFormula: "Σ out·in (+ out with a bias)",
	}
}

func (floraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	return attachProjected("flora", layers, o)
}

func (floraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	return fullMethod{}.TrainableParams(layers, o)
}

// floraState is one weight's Flora state: the compressed first moment C
// (left: r×n, right: m×r), the second moment v (m×n) and the step count.
type floraState struct {
	m, n, r int
	left    bool
	kappa   int
	clip    float64
	seed    uint64
	layer   int // i: index among the attachment's layers
	layers  int // L

	c, v []float32
	t    int
}

func (s *floraState) bytes() int64 { return 4 * int64(len(s.c)+len(s.v)) }

// projection returns A_k (left: r×m, right: n×r).
func (s *floraState) projection(k int) []float32 {
	d := s.n
	if s.left {
		d = s.m
	}
	return floraGaussian(s.seed+1+uint64(s.layer)+uint64(k)*uint64(s.layers), s.r*d, s.r)
}

// floraGaussian returns n draws of N(0, 1/r) from
// torch.Generator().manual_seed(seed) by Box–Muller over 2n uniforms.
func floraGaussian(seed uint64, n, r int) []float32 {
	u := nn.New(2 * n)
	nn.NewTorchGenerator(seed).FillUniform(u, 0, 1)
	out := make([]float32, n)
	sc := 1 / math.Sqrt(float64(r))
	for j := range out {
		z := math.Sqrt(-2*math.Log(1-float64(u.Data[j]))) * math.Cos(2*math.Pi*float64(u.Data[n+j]))
		out[j] = float32(z * sc)
	}
	return out
}

// down returns the compression of x (m×n) by a.
func (s *floraState) down(a, x []float32) []float32 {
	if s.left {
		c := make([]float32, s.r*s.n)
		kernels.Sgemm(false, false, s.r, s.n, s.m, 1, a, s.m, x, s.n, 0, c, s.n)
		return c
	}
	c := make([]float32, s.m*s.r)
	kernels.Sgemm(false, false, s.m, s.r, s.n, 1, x, s.n, a, s.r, 0, c, s.r)
	return c
}

// up returns the decompression (m×n) of c by a.
func (s *floraState) up(a, c []float32) []float32 {
	x := make([]float32, s.m*s.n)
	if s.left {
		kernels.Sgemm(true, false, s.m, s.n, s.r, 1, a, s.m, c, s.n, 0, x, s.n)
	} else {
		kernels.Sgemm(false, true, s.m, s.n, s.r, 1, c, s.r, a, s.r, 0, x, s.n)
	}
	return x
}

func (s *floraState) step(o *nn.AdamW, p nn.ParamRef, lr float32) {
	w, g := p.T.Data, p.T.Grad
	k := s.t / s.kappa
	a := s.projection(k)
	if s.c == nil {
		if s.left {
			s.c = make([]float32, s.r*s.n)
		} else {
			s.c = make([]float32, s.m*s.r)
		}
		s.v = make([]float32, s.m*s.n)
		o.Meter.Add(s.bytes())
	}
	s.t++
	b1, b2 := o.Beta1, o.Beta2
	// Adam's second moment normalises the gradient: u = G/(√v̂ + ε).
	rbc2 := float32(1 / math.Sqrt(1-math.Pow(float64(b2), float64(s.t))))
	u := make([]float32, len(g))
	for i, gi := range g {
		s.v[i] = b2*s.v[i] + (1-b2)*gi*gi
		u[i] = gi / (float32(math.Sqrt(float64(s.v[i])))*rbc2 + o.Eps)
	}
	// The update's first moment: u mixed with the decompressed previous
	// moment (flora_opt's order).
	mt := s.up(a, s.c)
	for i, ui := range u {
		mt[i] = b1*mt[i] + (1-b1)*ui
	}
	if s.t%s.kappa == 0 { // resample, carrying the moment over
		a2 := s.projection(k + 1)
		s.c = s.down(a2, s.up(a, s.c))
		a = a2
	}
	du := s.down(a, u)
	for i := range s.c {
		s.c[i] = b1*s.c[i] + (1-b1)*du[i]
	}
	bc1 := float32(1 - math.Pow(float64(b1), float64(s.t)))
	var ss float64
	for i := range mt {
		mt[i] /= bc1
		ss += float64(mt[i]) * float64(mt[i])
	}
	// Adafactor's update clipping, as flora_opt: U ← U/max(1, RMS(U)/d).
	c := float32(1)
	if s.clip > 0 {
		c = float32(1 / max(1, math.Sqrt(ss/float64(len(mt)))/s.clip))
	}
	if p.Decay && o.WeightDecay != 0 {
		kernels.Scale(1-lr*o.WeightDecay, w)
	}
	kernels.Axpy(-lr*c, mt, w)
}

func init() { Register("flora", floraMethod{}) }
