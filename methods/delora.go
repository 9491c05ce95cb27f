package methods

import (
	"math"

	"peftbench/nn"
)

// DeLoRA is decoupled low-rank adaptation (Bini, Girrbach and Akata
// 2025), as HF PEFT's peft.tuners.delora computes it:
//
//	ΔW = (λ/r)·B·Ξ·A·diag(w),   Ξ = diag(1/(‖a_i‖·‖b_i‖)),
//	y = x·W0ᵀ + b + ((drop(x) ⊙ w)·Aᵀ ⊙ ξ)·Bᵀ,   ξ_i = λ/(r·‖a_i‖·‖b_i‖),
//
// A (r×In, rows a_i), B (Out×r, columns b_i) and the scalar λ train; w
// (In) holds the column norms of W0, ‖W0[:, j]‖, fixed at attach (HF's
// delora_w_norm buffer). Each norm is clamped below at 1e-4, as HF does, so
// the clamp stops its gradient while it binds (B = 0 at step 0).
//
// Bound: ΔW = (λ/r)·Σ_i b_i·(diag(w)·a_i)ᵀ/(‖a_i‖‖b_i‖), and
// ‖b·(Da)ᵀ‖_F = ‖b‖·‖Da‖ ≤ ‖b‖·‖a‖·max_j w_j, so
//
//	‖ΔW‖_F ≤ (|λ|/r)·Σ_i ‖diag(w)·a_i‖/‖a_i‖ ≤ |λ|·max_j ‖W0[:, j]‖ ≤ |λ|·‖W0‖_F
//
// (the clamps only shrink the terms): the paper's boundary, with the
// per-input-channel norms HF uses in place of the paper's one scalar ‖W0‖.
// For r = 1 the first inequality is an equality.
//
// Init (HF init_weights=True): A Kaiming-uniform (a = √5, fan-in In), B = 0,
// so ΔW = 0; λ = delora_lambda. init_weights=false draws B Kaiming-uniform
// too (fan-in r), A then B per layer. HF's module_dropout is, in its code,
// dropout on the adapter path's input; so it is here. Defaults are HF's:
// r = 8, delora_lambda = 15, module_dropout = 0.
//
// With B = 0 the first step moves ‖b_i‖ off the clamp and ΔW at once to
// full strength λ/r per rank-1 term: the step size of B's direction does
// not set ΔW's size, λ does (the decoupling). ΔW's sensitivity to B is
// ∝ λ/‖b_i‖, largest while B is small. HF's docs recommend a learning rate
// 10–100× LoRA's, "typical values from 1e-3/1e-2" (its MetaMathQA run
// uses 1e-3); Info.LR takes 1e-2: at 1e-3 the columns of B stay within a
// few 1e-3 of zero through the first steps, where a finite-difference
// check with the conformance suite's step of 2e-3 cannot resolve the
// gradient (it converges to backward's only at steps near 3e-5).
type DeLoRA struct {
	A, B   *nn.Tensor // delora_A (r×In), delora_B (Out×r)
	Lambda *nn.Tensor // delora_lambda (1)
	// WNorm holds the column norms of W0 (In), frozen.
	WNorm   *nn.Tensor
	Rank    int
	Dropout float32

	scale *nn.Func
	rng   *nn.RNG
}

// deloraEps is HF's clamp on the row norms of A and column norms of B.
const deloraEps = 1e-4

// Forward computes x·W0ᵀ + b + ((drop(x) ⊙ w)·Aᵀ ⊙ ξ)·Bᵀ.
func (d *DeLoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	xd := g.Dropout(x, d.Dropout, d.rng)
	h := g.MatMul(g.MulRow(xd, d.WNorm), d.A, false, true)
	h = g.MulRow(h, g.Custom(d.scale, []int{d.Rank}, d.A, d.B, d.Lambda))
	return g.Add(l.Base(g, x), g.MatMul(h, d.B, false, true))
}

// Params returns A, B and λ, all with weight decay (HF's Trainer decays
// every parameter whose name lacks "bias").
func (d *DeLoRA) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: d.A.Name, T: d.A, LRMul: 1, Decay: true},
		{Name: d.B.Name, T: d.B, LRMul: 1, Decay: true},
		{Name: d.Lambda.Name, T: d.Lambda, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + B·diag(ξ)·A·diag(w).
func (d *DeLoRA) Merged(l *nn.Linear) []float32 {
	w := append([]float32(nil), l.Weight.Data...)
	xi := make([]float32, d.Rank)
	d.scale.Forward(xi, []*nn.Tensor{d.A, d.B, d.Lambda})
	bs := make([]float32, len(d.B.Data)) // B·diag(ξ)
	for o := range l.Out {
		for i := range d.Rank {
			bs[o*d.Rank+i] = d.B.Data[o*d.Rank+i] * xi[i]
		}
	}
	addLowRank(w, bs, d.deloraAW(), l.Out, d.Rank, l.In, 1)
	return w
}

// deloraAW returns A·diag(w).
func (d *DeLoRA) deloraAW() []float32 {
	in := len(d.WNorm.Data)
	aw := make([]float32, len(d.A.Data))
	for i := range d.Rank {
		for j, v := range d.WNorm.Data {
			aw[i*in+j] = d.A.Data[i*in+j] * v
		}
	}
	return aw
}

// deloraNorms returns max(‖a_i‖, ε) and max(‖b_i‖, ε) (float32, as torch
// computes them) and whether each clamp is inactive.
func deloraNorms(a, b []float32, r int, i int) (an, bn float32, aFree, bFree bool) {
	in, out := len(a)/r, len(b)/r
	var sa, sb float64
	for _, v := range a[i*in : (i+1)*in] {
		sa += float64(v) * float64(v)
	}
	for o := range out {
		v := float64(b[o*r+i])
		sb += v * v
	}
	an, bn = float32(math.Sqrt(sa)), float32(math.Sqrt(sb))
	aFree, bFree = an >= deloraEps, bn >= deloraEps
	return max(an, deloraEps), max(bn, deloraEps), aFree, bFree
}

// deloraScaleFunc computes ξ_i = λ/(r·max(‖a_i‖, ε)·max(‖b_i‖, ε)) from
// A (r×In), B (Out×r) and λ, with the gradient into all three (none into a
// norm while its clamp binds, as torch.clamp's).
func deloraScaleFunc(r int) *nn.Func {
	return &nn.Func{
		Name: "delora_scale",
		Forward: func(y []float32, ins []*nn.Tensor) {
			a, b, lam := ins[0].Data, ins[1].Data, ins[2].Data[0]
			for i := range r {
				an, bn, _, _ := deloraNorms(a, b, r, i)
				y[i] = lam / float32(r) / (an * bn)
			}
		},
		Backward: func(dy []float32, ins []*nn.Tensor) {
			at, bt, lt := ins[0], ins[1], ins[2]
			a, b, lam := at.Data, bt.Data, float64(lt.Data[0])
			in, out := len(a)/r, len(b)/r
			for i, g := range dy {
				an, bn, aFree, bFree := deloraNorms(a, b, r, i)
				c := float64(g) / (float64(r) * float64(an) * float64(bn)) // ∂ξ_i/∂λ · g
				if lt.Grad != nil {
					lt.Grad[0] += float32(c)
				}
				// ∂ξ_i/∂a_i = −ξ_i·a_i/‖a_i‖² (likewise b_i)
				if at.Grad != nil && aFree {
					k := -c * lam / (float64(an) * float64(an))
					for j := range in {
						at.Grad[i*in+j] += float32(k * float64(a[i*in+j]))
					}
				}
				if bt.Grad != nil && bFree {
					k := -c * lam / (float64(bn) * float64(bn))
					for o := range out {
						bt.Grad[o*r+i] += float32(k * float64(b[o*r+i]))
					}
				}
			}
		},
	}
}

type deloraMethod struct{}

func (deloraMethod) Info() Info {
	return Info{
		Name: "delora", Family: "lora", HasRank: true,
		Paper: Paper{Title: "Decoupling Angles and Strength in Low-rank Adaptation",
			Authors: "Bini, Girrbach and Akata", Year: 2025, ArXiv: "2503.18225"},
		Summary: "ΔW = (λ/r)·B·Ξ·A·diag(‖W0 columns‖), Ξ normalising each rank-1 term: ‖ΔW‖_F ≤ |λ|·max column norm of W0, λ trained",
		Options: []Option{
			intOpt("rank", 8, 1, "adapter rank r"),
			floatOpt("delora_lambda", 15, nil, nil, "initial λ, the boundary of ‖ΔW‖ (trained)"),
			{Name: "module_dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true,
				Doc: "dropout on the adapter path's input while training (what HF's module_dropout does)"},
			boolOpt("init_weights", true, "true: A Kaiming-uniform, B = 0 (ΔW = 0); false: B Kaiming-uniform too"),
		},
		ParamsFormula: "Σ (r·(in+out) + 1)",
		AltOptions:    map[string]any{"rank": 16, "delora_lambda": 4},
		LR:            1e-2,
	}
}

// CheckLayers checks rank ≤ min(out, in) (HF does not; a larger rank adds
// only dependent rank-1 terms).
func (deloraMethod) CheckLayers(o Options, layers []LayerShape) error {
	return checkRankFits("delora", "rank", o.Int("rank"), layers)
}

func (deloraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		d := &DeLoRA{Rank: r, Dropout: float32(o.Float("module_dropout")), scale: deloraScaleFunc(r)}
		d.A = nn.Param(l.Name+".delora_A", r, l.In)
		d.B = nn.Param(l.Name+".delora_B", l.Out, r)
		d.Lambda = nn.Param(l.Name+".delora_lambda", 1)
		rng.KaimingUniform(d.A, l.In)
		if !o.Bool("init_weights") {
			rng.KaimingUniform(d.B, r)
		}
		d.Lambda.Data[0] = float32(o.Float("delora_lambda"))
		d.WNorm = nn.New(l.In)
		d.WNorm.Name = l.Name + ".delora_w_norm"
		for j := range l.In {
			var s float64
			for o := range l.Out {
				v := float64(l.Weight.Data[o*l.In+j])
				s += v * v
			}
			d.WNorm.Data[j] = float32(math.Sqrt(s))
		}
		return d, nil
	})
	if err != nil {
		return nil, err
	}
	return &deloraAttachment{at}, nil
}

func (deloraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += int64(o.Int("rank"))*int64(l.In+l.Out) + 1
	}
	return n
}

// deloraAttachment turns the adapters' dropout on and off.
type deloraAttachment struct{ *layerAttachment }

func (at *deloraAttachment) SetTraining(rng *nn.RNG) {
	for _, a := range at.adapters {
		d := a.(*DeLoRA)
		d.rng = childRNG(rng, d.A.Name)
	}
}

func init() { Register("delora", deloraMethod{}) }
