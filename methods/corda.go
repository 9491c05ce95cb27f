package methods

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

// CorDA (context-oriented decomposition adaptation, Yang et al. 2024) is
// LoRA initialised from the SVD of W0·C, C the covariance of the layer's
// inputs on calibration data, as HF PEFT's peft.tuners.lora.corda computes
// it: each calibration batch X_b is divided by |max X_b| and
// C = mean_b X̂_bᵀX̂_b; C ← C + λI with λ = damp·mean(diag C), damp = 0.01
// doubled until ‖(C+λI)(C+λI)⁻¹ − I‖_F < 0.05; W0·C = U·S·Ṽᵀ and
// V = (Ṽᵀ·C⁻¹)ᵀ. IPM (instruction-previewed) keeps the top r triplets, KPM
// (knowledge-preserved) the bottom r; with S ← S/s, A = √S·Vᵀ and
// B = U·√S, and the frozen residual is W0 − s·B·A. As PiSSA here, the
// adapter keeps the frozen initial factors instead of overwriting W0
// (LoRA's A0, B0), so the step-0 model is exactly the base.
//
// The decomposition runs in float64 (HF: float32); the singular vectors'
// signs follow svd's rule (they cancel in B·A).
type corda struct {
	*loraAttachment
	o Options
}

// cordaCovariance returns C = mean over batches of X̂_bᵀX̂_b, with
// X̂_b = X_b/|max X_b| (HF's hook), for rows x (n×in) split evenly into
// batches.
func cordaCovariance(x []float32, in, batches int) (*mat.SymDense, error) {
	n := len(x) / in
	if n%batches != 0 {
		return nil, fmt.Errorf("%d input rows do not split into %d equal batches", n, batches)
	}
	per := n / batches
	c := mat.NewSymDense(in, nil)
	row := make([]float64, in)
	for b := range batches {
		xb := x[b*per*in : (b+1)*per*in]
		top := math.Inf(-1)
		for _, v := range xb {
			top = max(top, float64(v))
		}
		norm := math.Abs(top)
		if norm == 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
			return nil, fmt.Errorf("calibration batch %d has max input %g", b, top)
		}
		for i := range per {
			for j, v := range xb[i*in : (i+1)*in] {
				row[j] = float64(v) / norm
			}
			c.SymRankOne(c, 1/float64(batches), mat.NewVecDense(in, row))
		}
	}
	return c, nil
}

// cordaDamp returns C + λI and its inverse, with HF's damping loop.
func cordaDamp(c *mat.SymDense) (fixed, inv *mat.Dense, err error) {
	in := c.SymmetricDim()
	var meanDiag float64
	for j := range in {
		meanDiag += c.At(j, j)
	}
	meanDiag /= float64(in)
	for damp := 0.01; damp < 1e12; damp *= 2 {
		fixed = mat.DenseCopyOf(c)
		for j := range in {
			fixed.Set(j, j, fixed.At(j, j)+meanDiag*damp)
		}
		inv = new(mat.Dense)
		if err := inv.Inverse(fixed); err != nil {
			if _, ill := err.(mat.Condition); !ill {
				continue // exactly singular: damp more
			}
		}
		var prod mat.Dense
		prod.Mul(fixed, inv)
		for j := range in {
			prod.Set(j, j, prod.At(j, j)-1)
		}
		if e := mat.Norm(&prod, 2); e < 0.05 { // Frobenius, as torch.dist
			return fixed, inv, nil
		}
	}
	return nil, nil, fmt.Errorf("covariance matrix stays singular under damping")
}

// CalibrateInputs builds each layer's covariance and re-initialises its
// adapter from the SVD of W0·C.
func (at *corda) CalibrateInputs(est InputEstimator) error {
	nb := at.o.Int("calib_batches")
	xs, err := est(at.layers, nb)
	if err != nil {
		return fmt.Errorf("methods: corda: %w", err)
	}
	for k, l := range at.layers {
		if err := at.initLayer(at.adapters[k], l, xs[k], nb); err != nil {
			return fmt.Errorf("methods: corda: %s: %w", l.Name, err)
		}
	}
	return nil
}

func (at *corda) initLayer(a *LoRA, l *nn.Linear, x []float32, batches int) error {
	c, err := cordaCovariance(x, l.In, batches)
	if err != nil {
		return err
	}
	fixed, inv, err := cordaDamp(c)
	if err != nil {
		return err
	}
	var wc mat.Dense
	wc.Mul(dense(l.Weight.Data, l.Out, l.In), fixed)
	u, s, vt, err := svd64(&wc)
	if err != nil {
		return err
	}
	var v mat.Dense // (Ṽᵀ·C⁻¹)ᵀ = C⁻ᵀ·Ṽ, In×k
	v.Mul(inv.T(), vt)
	r, k := a.Rank, len(s)
	first := 0
	if at.o.String("corda_method") == "kpm" {
		first = k - r
	}
	sc := float64(a.Scale)
	for p := range r {
		root := math.Sqrt(s[first+p] / sc)
		for j := range l.In {
			a.A.Data[p*l.In+j] = float32(root * v.At(j, first+p))
		}
		for i := range l.Out {
			a.B.Data[i*r+p] = float32(root * u.At(i, first+p))
		}
	}
	a.setResidual(l)
	return nil
}

type cordaMethod struct{ lowRank }

// Attach gives every layer a plain LoRA adapter (A Kaiming-uniform, B = 0)
// until CalibrateInputs re-initialises it.
func (m *cordaMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	return &corda{loraAttachment: plainLoRAs(layers, o, rng), o: o}, nil
}

func init() {
	opts := []Option{
		intOpt("rank", 8, 1, "adapter rank r"),
		floatOpt("alpha", 8, fptr(0), nil, "scaling numerator α; a number or a multiple of the rank (\"2r\")"),
		{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
		stringOpt("corda_method", "ipm", []string{"ipm", "kpm"}, "top-r (instruction-previewed) or bottom-r (knowledge-preserved) triplets of W0·C"),
		intOpt("calib_batches", 8, 1, "training batches whose inputs the covariance averages"),
	}
	Register("corda", &cordaMethod{lowRank{
		info: Info{
			Name: "corda", Family: "data-init", HasRank: true,
			Paper:         Paper{Title: "CorDA: Context-Oriented Decomposition Adaptation of Large Language Models for Task-Aware Parameter-Efficient Fine-tuning", Authors: "Yang et al.", Year: 2024, ArXiv: "2406.05223"},
			Summary:       "A, B from the SVD of W0·C (C the input covariance), top-r (IPM) or bottom-r (KPM); residual W0 − s·B·A frozen",
			AltOptions:    map[string]any{"rank": 4, "corda_method": "kpm"},
			Options:       opts, // HF PEFT: r = 8, α = 8, corda_method = "ipm"
			ParamsFormula: "Σ r·(in+out)",
		},
		count: loraParams,
	}})
}
