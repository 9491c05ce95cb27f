package methods

import "gonum.org/v1/gonum/mat"

// riemannian is LoRA trained with HF PEFT's Riemannian preconditioner
// (peft.optimizers.create_riemannian_optimizer; Zhang and Pilanci 2024,
// "Riemannian Preconditioned LoRA"): the adapter is plain LoRA,
// ΔW = s·B·A with A Kaiming-uniform and B = 0, and before every optimiser
// step the gradients of each (A, B) pair become
//
//	g_A ← (BᵀB + λI)⁻¹·g_A,   g_B ← g_B·(AAᵀ + λI)⁻¹,
//
// both r×r preconditioners computed from the factors as they are before
// the step (HF: torch.linalg.pinv of the damped Gram matrix; it is
// symmetric positive definite for λ > 0, so the Cholesky inverse here is
// the same matrix). The preconditioner does not involve the scale s (HF's
// does not). HF applies it inside the wrapped optimiser's step, after the
// Trainer clipped the raw gradient; BeforeStep runs at that same point and
// the trial's AdamW then steps as usual. Registered as "riemannian", the
// name HF PEFT's method_comparison gives the optimiser (optimizer_type
// "riemannian"); reg is HF's damping, default 1e-2.
type riemannian struct {
	*loraAttachment
	reg float64
}

// BeforeStep preconditions every pair whose A and B both have gradients
// (HF: pairs where both require grad).
func (at *riemannian) BeforeStep(step, total int) {
	for _, a := range at.adapters {
		if a.A.Grad == nil || a.B.Grad == nil {
			continue
		}
		r := a.Rank
		in, out := len(a.A.Data)/r, len(a.B.Data)/r
		pB := symInverse(gramCols(a.B.Data, out, r), at.reg)
		pA := symInverse(gramRows(a.A.Data, r, in), at.reg)
		gA := dense(a.A.Grad, r, in)
		gB := dense(a.B.Grad, out, r)
		var na, nb mat.Dense
		na.Mul(pB, gA)
		nb.Mul(gB, pA)
		toF32(a.A.Grad, &na)
		toF32(a.B.Grad, &nb)
	}
}

// gramRows is A·Aᵀ for A (r×n) row-major, in float64.
func gramRows(a []float32, r, n int) *mat.SymDense {
	var g mat.SymDense
	g.SymOuterK(1, dense(a, r, n))
	return &g
}

// gramCols is Bᵀ·B for B (m×r) row-major, in float64.
func gramCols(b []float32, m, r int) *mat.SymDense {
	var g mat.SymDense
	g.SymOuterK(1, dense(b, m, r).T())
	return &g
}

// symInverse returns (G + δI)⁻¹ for a symmetric positive semi-definite G:
// the Cholesky inverse, or the pseudo-inverse (singular values below
// 1e-12 of the largest dropped) where G + δI is numerically singular, as
// torch.linalg.pinv would give.
func symInverse(g *mat.SymDense, delta float64) *mat.Dense {
	r := g.SymmetricDim()
	d := mat.NewSymDense(r, nil)
	d.CopySym(g)
	for i := range r {
		d.SetSym(i, i, d.At(i, i)+delta)
	}
	var ch mat.Cholesky
	if ch.Factorize(d) {
		var s mat.SymDense
		if err := ch.InverseTo(&s); err == nil {
			return mat.DenseCopyOf(&s)
		}
	}
	var es mat.EigenSym
	es.Factorize(d, true)
	var v mat.Dense
	es.VectorsTo(&v)
	vals := es.Values(nil)
	top := 0.0
	for _, x := range vals {
		top = max(top, x)
	}
	inv := mat.NewDense(r, r, nil)
	for k, x := range vals {
		if x <= 1e-12*top {
			continue
		}
		for i := range r {
			for j := range r {
				inv.Set(i, j, inv.At(i, j)+v.At(i, k)*v.At(j, k)/x)
			}
		}
	}
	return inv
}

func init() {
	opts := append(loraOptions(8, 8, "kaiming", "gaussian", "pissa", "olora"),
		floatOpt("reg", 1e-2, fptr(0), nil, "damping λ added to the r×r Gram matrices before inversion (HF's reg)"))
	Register("riemannian", &lowRank{
		info: Info{
			Name: "riemannian", Family: "optimizer", HasRank: true,
			Paper: Paper{Title: "Riemannian Preconditioned LoRA for Fine-Tuning Foundation Models",
				Authors: "Zhang and Pilanci", Year: 2024, ArXiv: "2402.02347"},
			Summary: "LoRA whose gradients are preconditioned by r×r Gram inverses before AdamW: g_A ← (BᵀB+λI)⁻¹g_A, g_B ← g_B(AAᵀ+λI)⁻¹ " +
				"(HF PEFT's create_riemannian_optimizer, registered under HF's optimizer_type \"riemannian\")",
			// pissa starts with B ≠ 0, so A's preconditioner acts from step 0.
			AltOptions:    map[string]any{"rank": 4, "alpha": 16, "reg": 1e-3, "init": "pissa"},
			Options:       opts,
			ParamsFormula: "Σ r·(in+out)",
		},
		wrap: func(at *loraAttachment, o Options) Attachment {
			return &riemannian{loraAttachment: at, reg: o.Float("reg")}
		},
		count: loraParams,
	})
}
