package methods

import (
	"fmt"
	"math"

	"peftbench/kernels"
	"peftbench/nn"
)

// GaLore is gradient low-rank projection (Zhao et al., ICML 2024), as the
// authors' galore_torch GaLoreAdamW with proj_type "std" computes it: the
// targeted layers' weights W (m×n = Out×In) train in full, as with full
// fine-tuning, but their Adam moments live in a rank-r projection of the
// gradient G. The method is an optimiser (OptimizerMaker), not an
// adapter: Attach makes W and b trainable exactly as "full" does, and the
// optimiser it returns steps every weight with
//
//	every update_proj_gap steps (at steps 0, T, 2T, … of that weight):
//	  U·S·Vᵀ = SVD(G); P = U[:, :r] (m×r) if m < n, else P = V[:, :r]ᵀ (r×n)
//	R = PᵀG (r×n)  or  R = G·Pᵀ (m×r)    (P spans the smaller dimension)
//	m ← β1·m + (1−β1)·R,  v ← β2·v + (1−β2)·R²,  ψ = m̂ / (√v̂ + ε)
//	W ← W·(1 − lr·wd) − lr·scale·(P·ψ  or  ψ·P)
//
// and every other parameter (the biases) with the trial's AdamW. The
// moments are kept, not reset, when P changes (galore_torch keeps them);
// r above min(m, n) is min(m, n), as galore_torch's slicing of the SVD
// gives. Optimiser state: the projection and the two moments, 4·(m·r +
// 2·r·n) bytes for m < n (4·(r·n + 2·m·r) otherwise), against AdamW's
// 8·m·n.
//
// Conventions that differ from galore_torch, so that GaLore runs under the
// trial's AdamW like every other method: the Adam arithmetic is
// torch.optim.AdamW's (ε added to √v̂ after bias correction; galore_torch's
// transformers-style AdamW adds ε to √v before it) and decoupled weight
// decay multiplies W by 1 − lr·wd before the update (galore_torch subtracts
// lr·wd·W after it); β, ε, weight decay and each parameter's learning-rate
// multiplier are the trial's. Singular vectors follow methods.svd's sign
// rule, so a refreshed P and the moments kept from the previous one are
// reproducible across LAPACK implementations.
type galoreMethod struct{}

func (galoreMethod) Info() Info {
	return Info{
		Name: "galore", Family: "optimizer", HasRank: true, RankAboveMin: true,
		RankMeans: "rank r of the gradient projection (r above min(out, in) is min(out, in))",
		Paper: Paper{Title: "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection",
			Authors: "Zhao et al.", Year: 2024, ArXiv: "2403.03507"},
		Summary: "full-parameter W, Adam moments on the rank-r SVD projection of the gradient, P refreshed every T steps",
		Options: []Option{
			intOpt("rank", 128, 1, "rank r of the projection P (galore_torch README: 128)"),
			intOpt("update_proj_gap", 200, 1, "steps T between SVDs of the gradient (galore_torch README: 200)"),
			floatOpt("scale", 0.25, fptr(0), nil, "scale α of the projected-back update (galore_torch README: 0.25; its GLUE fine-tuning uses 2–4)"),
		},
		AltOptions:    map[string]any{"rank": 4, "update_proj_gap": 2, "scale": 1.0},
		ParamsFormula: "Σ out·in (+ out with a bias)",
	}
}

func (galoreMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	return attachProjected("galore", layers, o)
}

func (galoreMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	return fullMethod{}.TrainableParams(layers, o)
}

// projAttachment is GaLore's, Fira's and Flora's attachment: full
// fine-tuning of the targeted layers, plus the method's optimiser.
type projAttachment struct {
	fullAttachment
	method string
	o      Options
}

// attachProjected makes every layer's weight and bias trainable, as full
// fine-tuning does.
func attachProjected(method string, layers []*nn.Linear, o Options) (*projAttachment, error) {
	at := &projAttachment{fullAttachment: fullAttachment{layers: layers}, method: method, o: o}
	for _, l := range layers {
		f := NewFull(l)
		l.Adapter = f
		at.params = append(at.params, f.Params()...)
	}
	return at, nil
}

// Optimizer returns the method's optimiser over base, which must be the
// trial's *nn.AdamW: the targeted weights take the method's update, every
// other parameter base's step.
func (at *projAttachment) Optimizer(base nn.Optimizer) (nn.Optimizer, error) {
	adam, ok := base.(*nn.AdamW)
	if !ok {
		return nil, fmt.Errorf("methods: %s: its optimiser is Adam-based and needs the trial's AdamW, have %T", at.method, base)
	}
	po := &projOptimizer{base: adam, states: map[*nn.Tensor]projState{}}
	for i, l := range at.layers {
		m, n := l.Out, l.In
		switch at.method {
		case "galore", "fira":
			po.states[l.Weight] = &galoreState{m: m, n: n, r: min(at.o.Int("rank"), m, n), left: m < n,
				gap: at.o.Int("update_proj_gap"), scale: float32(at.o.Float("scale")), fira: at.method == "fira"}
		case "flora":
			r := at.o.Int("rank")
			if r >= min(m, n) {
				continue // nothing to compress: base's AdamW, as the authors' Flora does
			}
			po.states[l.Weight] = &floraState{m: m, n: n, r: r, left: m < n, kappa: at.o.Int("kappa"), clip: at.o.Float("clip_threshold"),
				seed: uint64(at.o.Int("projection_seed")), layer: i, layers: len(at.layers)}
		default:
			return nil, fmt.Errorf("methods: %s: no projected optimiser", at.method)
		}
	}
	return po, nil
}

// projState is one targeted weight's state in a projected optimiser.
type projState interface {
	// step updates p (its Grad set) at learning rate lr (LRMul applied).
	step(o *nn.AdamW, p nn.ParamRef, lr float32)
	// bytes is the size of the state held now.
	bytes() int64
}

// projOptimizer steps the targeted weights with their projState and every
// other parameter with base.
type projOptimizer struct {
	base   *nn.AdamW
	states map[*nn.Tensor]projState
	rest   []nn.ParamRef
}

func (po *projOptimizer) Step(params []nn.ParamRef, lr float32) {
	po.rest = po.rest[:0]
	for _, p := range params {
		if s, ok := po.states[p.T]; ok {
			if p.T.Grad != nil {
				mul := p.LRMul
				if mul == 0 {
					mul = 1
				}
				s.step(po.base, p, lr*mul)
			}
			continue
		}
		po.rest = append(po.rest, p)
	}
	po.base.Step(po.rest, lr)
}

// StateBytes is base's state (the biases' moments) plus every projected
// weight's.
func (po *projOptimizer) StateBytes() int64 {
	n := po.base.StateBytes()
	for _, s := range po.states {
		n += s.bytes()
	}
	return n
}

// galoreState is one weight's GaLore (or Fira) state: the projection P
// (left: m×r, right: r×n), the moments m and v of R (left: r×n, right:
// m×r) and the weight's step count; Fira adds the norm-growth limiter's
// last residual norm.
type galoreState struct {
	m, n, r int
	left    bool
	gap     int
	scale   float32
	fira    bool

	p, mom, v []float32
	t         int
	// prevNorm is Fira's ‖S‖ of the previous step (after limiting);
	// hasPrev says there is one.
	prevNorm float64
	hasPrev  bool
}

func (s *galoreState) bytes() int64 {
	n := 4 * int64(len(s.p)+len(s.mom)+len(s.v))
	if s.fira && s.p != nil {
		n += 4 // the limiter's norm, one float
	}
	return n
}

// lowShape is the shape of R.
func (s *galoreState) lowShape() (rows, cols int) {
	if s.left {
		return s.r, s.n
	}
	return s.m, s.r
}

// refresh sets P from the SVD of g (m×n).
func (s *galoreState) refresh(g []float32) {
	u, _, v, err := svd(g, s.m, s.n)
	if err != nil {
		// A non-finite gradient: keep the previous P (the first r unit
		// vectors before any), so the step runs and the trainer's finite
		// check reports the divergence.
		if s.t == 0 {
			clear(s.p)
			for j := range s.r {
				if s.left {
					s.p[j*s.r+j] = 1
				} else {
					s.p[j*s.n+j] = 1
				}
			}
		}
		return
	}
	if s.left {
		for i := range s.m {
			for j := range s.r {
				s.p[i*s.r+j] = float32(u.At(i, j))
			}
		}
		return
	}
	for j := range s.r {
		for c := range s.n {
			s.p[j*s.n+c] = float32(v.At(c, j))
		}
	}
}

// project returns R = PᵀG (left) or G·Pᵀ (right).
func (s *galoreState) project(g []float32) []float32 {
	rows, cols := s.lowShape()
	out := make([]float32, rows*cols)
	if s.left {
		kernels.Sgemm(true, false, s.r, s.n, s.m, 1, s.p, s.r, g, s.n, 0, out, s.n)
	} else {
		kernels.Sgemm(false, true, s.m, s.r, s.n, 1, g, s.n, s.p, s.n, 0, out, s.r)
	}
	return out
}

// back computes dst ← alpha·(P·low or low·P) + beta·dst (m×n).
func (s *galoreState) back(dst []float32, alpha float32, low []float32, beta float32) {
	if s.left {
		kernels.Sgemm(false, false, s.m, s.n, s.r, alpha, s.p, s.r, low, s.n, beta, dst, s.n)
	} else {
		kernels.Sgemm(false, false, s.m, s.n, s.r, alpha, low, s.r, s.p, s.n, beta, dst, s.n)
	}
}

func (s *galoreState) step(o *nn.AdamW, p nn.ParamRef, lr float32) {
	w, g := p.T.Data, p.T.Grad
	if s.p == nil {
		rows, cols := s.lowShape()
		if s.left {
			s.p = make([]float32, s.m*s.r)
		} else {
			s.p = make([]float32, s.r*s.n)
		}
		s.mom, s.v = make([]float32, rows*cols), make([]float32, rows*cols)
		o.Meter.Add(s.bytes())
	}
	if s.t%s.gap == 0 {
		s.refresh(g)
	}
	r := s.project(g)
	s.t++
	bc1 := float32(1 - math.Pow(float64(o.Beta1), float64(s.t)))
	bc2 := float32(1 - math.Pow(float64(o.Beta2), float64(s.t)))
	// kernels.AdamW on a zero "parameter" at lr 1 leaves −ψ in it, with
	// torch's AdamW arithmetic: −(m/bc1)/(√v/√bc2 + ε).
	neg := make([]float32, len(r))
	kernels.AdamW(neg, r, s.mom, s.v, 1, o.Beta1, o.Beta2, o.Eps, 0, bc1, bc2)
	if p.Decay && o.WeightDecay != 0 {
		kernels.Scale(1-lr*o.WeightDecay, w)
	}
	if !s.fira {
		s.back(w, lr*s.scale, neg, 1)
		return
	}
	// Fira: W ← W − lr·(scale·P·ψ + S), S = φ ⊙ (G − scale·P·R) limited.
	res := append([]float32(nil), g...)
	s.back(res, -s.scale, r, 1)
	s.firaScale(res, neg, r)
	s.limit(res)
	s.back(w, lr*s.scale, neg, 1)
	kernels.Axpy(-lr, res, w)
}

// firaScale multiplies the residual res (m×n) by Fira's norm-based scaling
// φ = ‖ψ‖/(‖R‖ + 1e-8), one factor per column of R (left: its n columns,
// norms over r rows) or per row (right: its m rows, norms over r columns),
// as the authors' fira_adamw picks the norm dimension from R's shape
// (norm_dim = 0 if rows < cols else 1).
func (s *galoreState) firaScale(res, negPsi, r []float32) {
	rows, cols := s.lowShape()
	if rows < cols { // per column j of R, scaling column j of res
		for j := range cols {
			var np, nr float64
			for i := range rows {
				np += float64(negPsi[i*cols+j]) * float64(negPsi[i*cols+j])
				nr += float64(r[i*cols+j]) * float64(r[i*cols+j])
			}
			phi := float32(math.Sqrt(np) / (math.Sqrt(nr) + 1e-8))
			for i := range s.m {
				res[i*s.n+j] *= phi
			}
		}
		return
	}
	for i := range rows { // per row i of R, scaling row i of res
		var np, nr float64
		for j := range cols {
			np += float64(negPsi[i*cols+j]) * float64(negPsi[i*cols+j])
			nr += float64(r[i*cols+j]) * float64(r[i*cols+j])
		}
		phi := float32(math.Sqrt(np) / (math.Sqrt(nr) + 1e-8))
		kernels.Scale(phi, res[i*s.n:(i+1)*s.n])
	}
}

// firaGamma is Fira's norm-growth limit γ (fira_adamw: 1.01).
const firaGamma = 1.01

// limit applies Fira's norm-growth limiter to S in place: from the second
// step on, S ← S/ℓ with ℓ = max(‖S‖/(‖S_prev‖ + 1e-8), γ)/γ, so ‖S‖ grows
// by at most γ per step; ‖S_prev‖ is the previous step's limited norm.
func (s *galoreState) limit(res []float32) {
	var ss float64
	for _, x := range res {
		ss += float64(x) * float64(x)
	}
	norm := math.Sqrt(ss)
	if !s.hasPrev {
		s.prevNorm, s.hasPrev = norm, true
		return
	}
	l := max(norm/(s.prevNorm+1e-8), firaGamma) / firaGamma
	kernels.Scale(float32(1/l), res)
	s.prevNorm = norm / l
}

func init() { Register("galore", galoreMethod{}) }
