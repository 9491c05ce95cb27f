package methods

import "gonum.org/v1/gonum/mat"

// LoRA-FA freezes LoRA's random A and trains only B (which starts at 0), so
// ΔW = s·B·A stays in the row space of A and activations for A's gradient
// need not be stored. With precondition on (the default, as in HF PEFT's
// LoRA-FA optimiser), BeforeStep replaces B's gradient by
//
//	g_B ← (1/s²)·g_B·(A·Aᵀ + 1e-8·I)⁻¹,
//
// the gradient that makes the low-rank update the projection of the full
// gradient step onto A's row space. It runs in BeforeStep, after gradient
// clipping, as in HF PEFT (the clip sees the raw gradient).
type loraFA struct {
	*loraAttachment
	precondition bool
	inv          [][]float32 // (A·Aᵀ + δI)⁻¹ per adapter, r×r; A is frozen
}

func (at *loraFA) BeforeStep(step, total int) {
	if !at.precondition {
		return
	}
	if at.inv == nil {
		for _, a := range at.adapters {
			at.inv = append(at.inv, gramInverse(a.A.Data, a.Rank, len(a.A.Data)/a.Rank, 1e-8))
		}
	}
	for k, a := range at.adapters {
		r, out := a.Rank, len(a.B.Data)/a.Rank
		c := 1 / (float64(a.Scale) * float64(a.Scale))
		inv := at.inv[k]
		row := make([]float64, r)
		for i := range out {
			g := a.B.Grad[i*r : (i+1)*r]
			for q := range r {
				var acc float64
				for p, gv := range g {
					acc += float64(gv) * float64(inv[p*r+q])
				}
				row[q] = c * acc
			}
			for q, v := range row {
				g[q] = float32(v)
			}
		}
	}
}

// gramInverse returns (A·Aᵀ + δI)⁻¹ for A (r×n), row-major r×r. A·Aᵀ + δI
// is symmetric positive definite, so Cholesky suffices.
func gramInverse(a []float32, r, n int, delta float64) []float32 {
	am := dense(a, r, n)
	var g mat.SymDense
	g.SymOuterK(1, am)
	for i := range r {
		g.SetSym(i, i, g.At(i, i)+delta)
	}
	var ch mat.Cholesky
	var inv mat.Dense
	if ch.Factorize(&g) {
		var s mat.SymDense
		if err := ch.InverseTo(&s); err == nil {
			inv.CloneFrom(&s)
		}
	}
	if inv.IsEmpty() { // numerically singular: fall back to the pseudo-inverse
		var f mat.SVD
		f.Factorize(&g, mat.SVDFull)
		var u, v mat.Dense
		f.UTo(&u)
		f.VTo(&v)
		s := f.Values(nil)
		inv.ReuseAs(r, r)
		for i := range r {
			for j := range r {
				var acc float64
				for k, sv := range s {
					if sv > 1e-12*s[0] {
						acc += v.At(i, k) * u.At(j, k) / sv
					}
				}
				inv.Set(i, j, acc)
			}
		}
	}
	out := make([]float32, r*r)
	toF32(out, &inv)
	return out
}

func init() {
	opts := append(loraOptions(8, 8, "kaiming", "gaussian", "pissa", "olora"),
		boolOpt("precondition", true, "precondition B's gradient by (1/s²)(AAᵀ+δI)⁻¹ as HF PEFT's LoRA-FA optimiser does"))
	Register("lora-fa", &lowRank{
		info: Info{
			Name: "lora-fa", Family: "lora", HasRank: true,
			Paper:         Paper{Title: "LoRA-FA: Memory-efficient Low-rank Adaptation for Large Language Models Fine-tuning", Authors: "Zhang et al.", Year: 2023, ArXiv: "2308.03303"},
			Summary:       "LoRA with A frozen at its random init; only B trains",
			AltOptions:    map[string]any{"rank": 4, "precondition": false},
			Options:       opts,
			ParamsFormula: "Σ r·out",
		},
		configure: func(a *LoRA, o Options) { a.A.SetRequiresGrad(false) },
		wrap: func(at *loraAttachment, o Options) Attachment {
			return &loraFA{loraAttachment: at, precondition: o.Bool("precondition")}
		},
		count: func(l LayerShape, r int) int64 { return int64(r) * int64(l.Out) },
	})
}
