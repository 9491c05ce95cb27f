package methods

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

// loraPro is LoRA-Pro (Wang et al. 2024, ICLR 2025) as the authors' code
// runs it (mrflogs/LoRA-Pro, "lora-pro-full": lorapro_full_adjustment in
// their DeepSpeed-0.15.1/deepspeed/runtime/zero/stage_1_and_2.py). The
// adapter is plain LoRA, ΔW = s·B·A (A Kaiming-uniform, B = 0); the
// optimiser is LoRA-Pro's own. For each pair, from the gradients g_A, g_B:
//
//  1. the equivalent gradient of the adjusted pair,
//     G̃ = s·(B·g̃_A + g̃_B·A),  g̃_A = (1/s²)(BᵀB)⁻¹g_A,
//     g̃_B = (1/s²)[I − B(BᵀB)⁻¹Bᵀ]·g_B·(AAᵀ)⁻¹
//     (for true LoRA gradients, the projection of the full gradient onto
//     the low-rank tangent space {B·X + Y·A});
//  2. Adam on G̃ (Out×In): m ← β1·m + (1−β1)·G̃, v ← β2·v + (1−β2)·G̃²,
//     ĝ = (m/(1−β1ᵗ)) / (√v/√(1−β2ᵗ) + ε) — the moments are full-size, as
//     full fine-tuning's (the authors' exp_avg, exp_avg_sq);
//  3. the LoRA gradients ĝ induces, g_A' = s·Bᵀĝ, g_B' = s·ĝAᵀ, adjusted
//     once more with the optimal X: g̃_A = (1/s²)(BᵀB)⁻¹g_A' + X·A,
//     g̃_B = (1/s²)[I − B(BᵀB)⁻¹Bᵀ]g_B'(AAᵀ)⁻¹ − B·X, X solving the
//     Sylvester equation BᵀB·X + X·AAᵀ = −(1/s²)(BᵀB)⁻¹g_A'Aᵀ
//     (lorapro_x "sylvester"; "zero" takes X = 0);
//  4. A ← A − lr·g̃_A, B ← B − lr·g̃_B.
//
// Inverses are pinv(M + δI), δ = 1e-8 (Cholesky here, the same matrix for
// a positive definite M). X changes only how the step splits between A and
// B: s(B·X·A − B·X·A) = 0.
//
// Conventions that differ from the authors' code, and why: the code steps
// with the optimiser set to "sgd" without weight decay; here the trial's
// weight decay is decoupled, p ← p·(1 − lr·wd), as AdamW applies it. The
// code counts Adam's t from 2 at the first step (global_step is
// incremented before the adjustment reads global_step + 1), so its special
// step-0 branch never runs; here t counts from 1, as torch's Adam (with
// B = 0 the general formula gives that branch's g̃_A = g_A = 0 and
// g̃_B = (1/s²)g_B(AAᵀ)⁻¹ anyway). DeepSpeed there computes the clip
// coefficient from the raw gradient norm and multiplies the final g̃ by it;
// here, as for every method, the raw gradient is clipped before the
// optimiser sees it. The scale s is the adapter's α/r (the authors'
// script hard-codes 16/8 in the optimiser).
type loraPro struct {
	*loraAttachment
	xmode string
}

// Optimizer returns LoRA-Pro's optimiser, which reads base's β, ε, weight
// decay and Meter.
func (at *loraPro) Optimizer(base nn.Optimizer) (nn.Optimizer, error) {
	adam, ok := base.(*nn.AdamW)
	if !ok {
		return nil, fmt.Errorf("methods: lora-pro: its Adam runs on the equivalent full gradient and needs the trial's optimizer to be AdamW, got %T", base)
	}
	return &loraProOptimizer{at: at, base: adam, state: map[*LoRA]*loraProState{}}, nil
}

// loraProOptimizer is LoRA-Pro's Adam: full-size moments per LoRA pair.
type loraProOptimizer struct {
	at    *loraPro
	base  *nn.AdamW
	state map[*LoRA]*loraProState
	bytes int64
}

type loraProState struct {
	m, v []float32 // Out×In
	t    int
}

// StateBytes is the size of the moments: 2·4 bytes per element of each
// adapted weight (Out×In), what full fine-tuning's AdamW holds.
func (o *loraProOptimizer) StateBytes() int64 { return o.bytes }

// Step applies one LoRA-Pro update to every pair with gradients.
func (o *loraProOptimizer) Step(params []nn.ParamRef, lr float32) {
	refs := map[*nn.Tensor]nn.ParamRef{}
	for _, p := range params {
		refs[p.T] = p
	}
	b1, b2, eps := float64(o.base.Beta1), float64(o.base.Beta2), float64(o.base.Eps)
	beta1, beta2 := o.base.Beta1, o.base.Beta2
	for _, a := range o.at.adapters {
		if a.A.Grad == nil || a.B.Grad == nil {
			continue
		}
		r := a.Rank
		in, out := len(a.A.Data)/r, len(a.B.Data)/r
		st := o.state[a]
		if st == nil {
			st = &loraProState{m: make([]float32, out*in), v: make([]float32, out*in)}
			o.state[a] = st
			n := int64(8 * out * in)
			o.bytes += n
			o.base.Meter.Add(n)
		}
		st.t++
		s := float64(a.Scale)
		A, B := dense(a.A.Data, r, in), dense(a.B.Data, out, r)
		pro := newLoRAProGeometry(A, B, s)
		// 1. the equivalent gradient of the adjusted pair.
		gA, gB := pro.adjust(dense(a.A.Grad, r, in), dense(a.B.Grad, out, r), nil)
		geq := pro.equivalent(gA, gB)
		// 2. Adam on it.
		bc1 := 1 - math.Pow(b1, float64(st.t))
		bc2 := math.Sqrt(1 - math.Pow(b2, float64(st.t)))
		raw := geq.RawMatrix()
		hat := mat.NewDense(out, in, nil)
		hr := hat.RawMatrix()
		for i := range out {
			for j := range in {
				g := float32(raw.Data[i*raw.Stride+j])
				k := i*in + j
				st.m[k] = beta1*st.m[k] + (1-beta1)*g
				st.v[k] = beta2*st.v[k] + (1-beta2)*g*g
				hr.Data[i*hr.Stride+j] = (float64(st.m[k]) / bc1) / (math.Sqrt(float64(st.v[k]))/bc2 + eps)
			}
		}
		// 3. the LoRA gradients of ĝ, adjusted with the optimal X.
		var hA, hB mat.Dense
		hA.Mul(B.T(), hat)
		hA.Scale(s, &hA)
		hB.Mul(hat, A.T())
		hB.Scale(s, &hB)
		var x *mat.Dense
		if o.at.xmode == "sylvester" {
			x = pro.sylvesterX(&hA)
		}
		fA, fB := pro.adjust(&hA, &hB, x)
		// 4. the update, with AdamW's decoupled weight decay.
		o.apply(a.A, fA, refs[a.A], lr)
		o.apply(a.B, fB, refs[a.B], lr)
	}
}

func (o *loraProOptimizer) apply(t *nn.Tensor, g *mat.Dense, p nn.ParamRef, lr float32) {
	plr := float64(lr) * float64(lrMulOf(p))
	decay := 1.0
	if p.Decay {
		decay = 1 - plr*float64(o.base.WeightDecay)
	}
	raw := g.RawMatrix()
	for i := range raw.Rows {
		for j := range raw.Cols {
			k := i*raw.Cols + j
			t.Data[k] = float32(float64(t.Data[k])*decay - plr*raw.Data[i*raw.Stride+j])
		}
	}
}

func lrMulOf(p nn.ParamRef) float32 {
	if p.LRMul == 0 {
		return 1
	}
	return p.LRMul
}

// loraProGeometry holds one pair's factors and the damped inverses of
// their Gram matrices.
type loraProGeometry struct {
	A, B     *mat.Dense // r×In, Out×r
	s        float64
	btb, aat *mat.SymDense
	pB, pA   *mat.Dense // (BᵀB + δI)⁻¹, (AAᵀ + δI)⁻¹
}

// loraProDelta is the ridge of the authors' inverses.
const loraProDelta = 1e-8

func newLoRAProGeometry(A, B *mat.Dense, s float64) *loraProGeometry {
	var btb, aat mat.SymDense
	btb.SymOuterK(1, B.T())
	aat.SymOuterK(1, A)
	return &loraProGeometry{A: A, B: B, s: s, btb: &btb, aat: &aat,
		pB: symInverse(&btb, loraProDelta), pA: symInverse(&aat, loraProDelta)}
}

// adjust returns g̃_A = (1/s²)(BᵀB)⁻¹g_A + X·A and
// g̃_B = (1/s²)[I − B(BᵀB)⁻¹Bᵀ]g_B(AAᵀ)⁻¹ − B·X (X nil: zero).
func (p *loraProGeometry) adjust(gA, gB *mat.Dense, x *mat.Dense) (*mat.Dense, *mat.Dense) {
	c := 1 / (p.s * p.s)
	var nA mat.Dense
	nA.Mul(p.pB, gA)
	nA.Scale(c, &nA)
	var u, btu, w, nB mat.Dense
	u.Mul(gB, p.pA)      // g_B(AAᵀ)⁻¹, Out×r
	btu.Mul(p.B.T(), &u) // Bᵀ·u, r×r
	w.Mul(p.pB, &btu)
	nB.Mul(p.B, &w)
	nB.Sub(&u, &nB)
	nB.Scale(c, &nB)
	if x != nil {
		var xa, bx mat.Dense
		xa.Mul(x, p.A)
		nA.Add(&nA, &xa)
		bx.Mul(p.B, x)
		nB.Sub(&nB, &bx)
	}
	return &nA, &nB
}

// equivalent returns s·(B·g_A + g_B·A), the full-weight gradient a step on
// (g_A, g_B) amounts to.
func (p *loraProGeometry) equivalent(gA, gB *mat.Dense) *mat.Dense {
	var e, f mat.Dense
	e.Mul(p.B, gA)
	f.Mul(gB, p.A)
	e.Add(&e, &f)
	e.Scale(p.s, &e)
	return &e
}

// sylvesterX solves BᵀB·X + X·AAᵀ = −(1/s²)(BᵀB)⁻¹g_A·Aᵀ through the
// eigendecompositions BᵀB = U·Λ·Uᵀ and AAᵀ = V·M·Vᵀ: X = U·Y·Vᵀ with
// Y_ij = (UᵀCV)_ij / (λ_i + μ_j) (0 where λ_i + μ_j vanishes: the
// minimum-norm solution).
func (p *loraProGeometry) sylvesterX(gA *mat.Dense) *mat.Dense {
	r, _ := p.A.Dims()
	var rhs, gat mat.Dense
	gat.Mul(gA, p.A.T())
	rhs.Mul(p.pB, &gat)
	rhs.Scale(-1/(p.s*p.s), &rhs)
	var eb, ea mat.EigenSym
	eb.Factorize(p.btb, true)
	ea.Factorize(p.aat, true)
	var u, v mat.Dense
	eb.VectorsTo(&u)
	ea.VectorsTo(&v)
	lb, la := eb.Values(nil), ea.Values(nil)
	var y, t mat.Dense
	t.Mul(u.T(), &rhs)
	y.Mul(&t, &v)
	top := 0.0
	for _, l := range lb {
		top = max(top, math.Abs(l))
	}
	for _, l := range la {
		top = max(top, math.Abs(l))
	}
	for i := range r {
		for j := range r {
			d := lb[i] + la[j]
			if math.Abs(d) <= 1e-14*top {
				y.Set(i, j, 0)
				continue
			}
			y.Set(i, j, y.At(i, j)/d)
		}
	}
	var x mat.Dense
	t.Reset()
	t.Mul(&u, &y)
	x.Mul(&t, v.T())
	return &x
}

func init() {
	opts := append(loraOptions(8, 16, "kaiming", "gaussian"),
		stringOpt("lorapro_x", "sylvester", []string{"sylvester", "zero"},
			"X that splits the adjusted step between A and B: the Sylvester solution (optimal, the authors' code) or 0"))
	Register("lora-pro", &lowRank{
		info: Info{
			Name: "lora-pro", Family: "optimizer", HasRank: true,
			Paper: Paper{Title: "LoRA-Pro: Are Low-Rank Adapters Properly Optimized?",
				Authors: "Wang et al.", Year: 2024, ArXiv: "2407.18242"},
			Summary: "LoRA whose optimiser runs Adam on the equivalent full gradient s(B·g̃_A + g̃_B·A) of optimally adjusted " +
				"gradients and maps the Adam step back to A and B (X from a Sylvester equation), as the authors' code",
			AltOptions:    map[string]any{"rank": 4, "alpha": 8, "lorapro_x": "zero", "init": "gaussian"},
			Options:       opts,
			ParamsFormula: "Σ r·(in+out)",
		},
		wrap: func(at *loraAttachment, o Options) Attachment {
			return &loraPro{loraAttachment: at, xmode: o.String("lorapro_x")}
		},
		count: loraParams,
	})
}
