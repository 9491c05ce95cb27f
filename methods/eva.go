package methods

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

// EVA (Explained Variance Adaptation, Paischer et al. 2024) is LoRA,
// ΔW = s·B·A, initialised from the inputs each layer sees: A holds the top
// principal directions (right-singular vectors of the centred inputs) and
// B = 0, so ΔW = 0 and the base is untouched. The ranks are then
// redistributed: each layer offers its first round(ρ·r) components, ranked
// by explained-variance ratio σᵢ²/‖X − μ‖²_F, and the r·L best of them win,
// so a layer ends with a rank between 0 (no adapter) and round(ρ·r).
// adjust_scaling_factors scales α by r_l/r (s = α/r on every layer, as HF
// PEFT's alpha_pattern gives); whiten divides each component by √σᵢ.
//
// Conventions that differ from HF PEFT (peft.tuners.lora.eva):
//   - HF runs an incremental PCA over minibatches until the components'
//     cosine similarity to the previous batch's reaches τ; here the PCA is
//     exact, of the inputs stacked over calib_batches batches (through the
//     eigendecomposition of their centred scatter or Gram matrix, in
//     float64), and there is no τ. Components are signed as HF's svd_flip does (each
//     one's largest-magnitude entry positive).
//   - HF's rank budget is global; here it is shared only among layers with
//     equal in+out (q/k/v/o projections; an MLP's up and down projections),
//     so the trainable count stays Σ r·(in+out), the formula the trainer
//     checks. When every targeted layer has the same in+out, as in HF's
//     usual attention-only targets, the two agree. Ties in the ratio go to
//     the earlier layer, as HF's swap does for layers with equal inputs.
//   - Every row a layer receives counts (HF's language-modelling default
//     drops padding and label-masked tokens).
type eva struct {
	*loraAttachment
	o Options
}

// evaPCA is the principal-component analysis of one layer's inputs:
// components (rows, descending variance), their singular values σᵢ of the
// centred data, and explained-variance ratios.
type evaPCA struct {
	comps  *mat.Dense // k×In
	sigma  []float64
	ratios []float64
}

// pcaOf returns the first k principal components of x (n×in rows): the
// top eigenvectors of the centred scatter matrix XcᵀXc (in×in), or, with
// fewer rows than columns, those of the Gram matrix XcXcᵀ (n×n) mapped by
// v = Xcᵀu/σ.
func pcaOf(x []float32, n, in, k int) (evaPCA, error) {
	xc := dense(x, n, in)
	for j := range in {
		var m float64
		for i := range n {
			m += xc.At(i, j)
		}
		m /= float64(n)
		for i := range n {
			xc.Set(i, j, xc.At(i, j)-m)
		}
	}
	var total float64
	for _, v := range xc.RawMatrix().Data {
		total += v * v
	}
	gramRoute := n < in
	var sym mat.SymDense
	if gramRoute {
		sym.SymOuterK(1, xc)
	} else {
		sym.SymOuterK(1, xc.T())
	}
	var eig mat.EigenSym
	if !eig.Factorize(&sym, true) {
		return evaPCA{}, fmt.Errorf("eigendecomposition of a %d×%d matrix did not converge", sym.SymmetricDim(), sym.SymmetricDim())
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	p := evaPCA{comps: mat.NewDense(k, in, nil), sigma: make([]float64, k), ratios: make([]float64, k)}
	comp := make([]float64, in)
	for c := range k {
		col := len(vals) - 1 - c
		lam := max(vals[col], 0)
		p.sigma[c] = math.Sqrt(lam)
		if total > 0 {
			p.ratios[c] = lam / total
		}
		if gramRoute {
			clear(comp)
			if lam > 0 {
				for i := range n {
					ui := vecs.At(i, col) / p.sigma[c]
					for j, v := range xc.RawRowView(i) {
						comp[j] += ui * v
					}
				}
			}
		} else {
			for j := range in {
				comp[j] = vecs.At(j, col)
			}
		}
		big, sign := 0.0, 1.0
		for _, v := range comp {
			if a := math.Abs(v); a > big {
				big, sign = a, math.Copysign(1, v)
			}
		}
		for j, v := range comp {
			p.comps.Set(c, j, sign*v)
		}
	}
	return p, nil
}

// evaRanks redistributes the rank budget: layers in the same class (equal
// in+out) share r per layer; each offers its ratios[:len] and the best
// r·|class| win (ties: the earlier layer, then the earlier component).
func evaRanks(layers []*nn.Linear, ratios [][]float64, r int) ([]int, error) {
	ranks := make([]int, len(layers))
	classes := map[int][]int{}
	var order []int
	for k, l := range layers {
		c := l.In + l.Out
		if _, ok := classes[c]; !ok {
			order = append(order, c)
		}
		classes[c] = append(classes[c], k)
	}
	type cand struct {
		layer, comp int
		ratio       float64
	}
	for _, c := range order {
		var cands []cand
		for _, k := range classes[c] {
			for p, v := range ratios[k] {
				cands = append(cands, cand{k, p, v})
			}
		}
		budget := r * len(classes[c])
		if len(cands) < budget {
			return nil, fmt.Errorf("layers with in+out = %d offer %d components for a budget of %d (too few calibration rows?)", c, len(cands), budget)
		}
		slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(b.ratio, a.ratio) })
		for _, cd := range cands[:budget] {
			ranks[cd.layer]++
		}
	}
	return ranks, nil
}

// CalibrateInputs runs the PCA of every layer's inputs, redistributes the
// ranks and re-creates each adapter from its components.
func (at *eva) CalibrateInputs(est InputEstimator) error {
	xs, err := est(at.layers, at.o.Int("calib_batches"))
	if err != nil {
		return fmt.Errorf("methods: eva: %w", err)
	}
	r := at.o.Int("rank")
	maxComp := int(math.Round(at.o.Float("rho") * float64(r)))
	pcas := make([]evaPCA, len(at.layers))
	ratios := make([][]float64, len(at.layers))
	for k, l := range at.layers {
		n := len(xs[k]) / l.In
		kc := min(maxComp, l.In, n)
		if pcas[k], err = pcaOf(xs[k], n, l.In, kc); err != nil {
			return fmt.Errorf("methods: eva: %s: %w", l.Name, err)
		}
		ratios[k] = pcas[k].ratios
	}
	ranks, err := evaRanks(at.layers, ratios, r)
	if err != nil {
		return fmt.Errorf("methods: eva: %w", err)
	}
	alpha := at.o.Float("alpha")
	for k, l := range at.layers {
		rk := ranks[k]
		if rk == 0 { // HF replaces the layer by its base layer
			at.adapters[k] = nil
			l.Adapter = nil
			continue
		}
		al := alpha
		if at.o.Bool("adjust_scaling_factors") && rk != r {
			al *= float64(rk) / float64(r)
		}
		a := NewLoRA(l, rk, float32(al), nn.NewRNG(0, "unused"))
		a.Scale = float32(al / float64(rk))
		a.Dropout = float32(at.o.Float("dropout"))
		p := pcas[k]
		for c := range rk {
			div := 1.0
			if at.o.Bool("whiten") {
				div = math.Sqrt(p.sigma[c])
			}
			for j := range l.In {
				a.A.Data[c*l.In+j] = float32(p.comps.At(c, j) / div)
			}
		}
		at.adapters[k] = a
		l.Adapter = a
	}
	return nil
}

// Params lists the adapters that survived the redistribution.
func (at *eva) Params() []nn.ParamRef {
	var ps []nn.ParamRef
	for _, a := range at.adapters {
		if a != nil {
			ps = append(ps, a.Params()...)
		}
	}
	return ps
}

func (at *eva) SetTraining(rng *nn.RNG) {
	for _, a := range at.adapters {
		if a != nil {
			a.setRNG(childRNG(rng, a.A.Name))
		}
	}
}

func init() {
	opts := []Option{
		intOpt("rank", 8, 1, "adapter rank r (the mean rank after redistribution)"),
		floatOpt("alpha", 8, fptr(0), nil, "scaling numerator α; a number or a multiple of the rank (\"2r\")"),
		{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
		floatOpt("rho", 2, fptr(1), nil, "a layer's rank is at most round(ρ·r); 1 turns redistribution off"),
		boolOpt("whiten", false, "divide each component by √σ"),
		boolOpt("adjust_scaling_factors", true, "scale α by r_l/r so that s = α/r on every layer"),
		intOpt("calib_batches", 8, 1, "training batches whose layer inputs the PCA stacks"),
	}
	Register("eva", &evaMethod{lowRank{
		info: Info{
			Name: "eva", Family: "data-init", HasRank: true,
			Paper:         Paper{Title: "One Initialization to Rule them All: Fine-tuning via Explained Variance Adaptation", Authors: "Paischer et al.", Year: 2024, ArXiv: "2410.07170"},
			Summary:       "A = top principal directions of the layer's inputs, B = 0; ranks redistributed by explained variance (ρ)",
			AltOptions:    map[string]any{"rank": 4, "whiten": true, "adjust_scaling_factors": false},
			Options:       opts, // HF PEFT: r = 8, α = 8, rho = 2, whiten off, adjust_scaling_factors on
			ParamsFormula: "Σ r·(in+out) (ranks move between layers of equal in+out)",
		},
		count: loraParams,
	}})
}

type evaMethod struct{ lowRank }

// Attach gives every layer a plain LoRA adapter (A Kaiming-uniform, B = 0)
// until CalibrateInputs replaces it.
func (m *evaMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	return &eva{loraAttachment: plainLoRAs(layers, o, rng), o: o}, nil
}
