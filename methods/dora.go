package methods

import (
	"math"

	"peftbench/nn"
)

// DoRA is weight-decomposed low-rank adaptation: the merged weight is
//
//	W' = m ⊙ (W0 + s·B·A) / ‖W0 + s·B·A‖_row,
//
// a trainable magnitude per output row times a LoRA-updated direction. m
// starts at the row norms of W0, so W' = W0 at step 0, and the norm is
// treated as a constant in backward (detached), as the paper recommends
// and HF PEFT does. The forward follows PEFT:
//
//	y = x·W0ᵀ + b + (m/‖·‖ − 1)⊙(x̃·W0ᵀ) + (m/‖·‖)⊙(s·x̃·Aᵀ·Bᵀ),
//
// with x̃ the dropped-out input (x̃ = x without dropout, where it reduces to
// (m/‖·‖)⊙(x·W0ᵀ + s·x·Aᵀ·Bᵀ) + b).
type DoRA struct {
	*LoRA
	M *nn.Tensor // magnitude (Out), trainable

	// fixed, when set, replaces ‖W0 + s·B·A‖_row in Forward: the tests
	// hold the norm constant to check gradients by finite differences.
	fixed []float32
	row   []float64 // scratch for rowNorms
}

// rowNorms returns ‖W0 + s·B·A‖ per row (float64 accumulation).
func (d *DoRA) rowNorms(l *nn.Linear, dst []float32) {
	if d.fixed != nil {
		copy(dst, d.fixed)
		return
	}
	// Row by row, without a dense W0 + s·B·A: ‖W0ᵢ + s·Σ_p Bᵢₚ·Aₚ‖.
	r, in := d.Rank, l.In
	if cap(d.row) < in {
		d.row = make([]float64, in)
	}
	row := d.row[:in]
	s := float64(d.Scale)
	for i := range l.Out {
		for j, w := range l.Weight.Data[i*in : (i+1)*in] {
			row[j] = float64(w)
		}
		for p, bv := range d.B.Data[i*r : (i+1)*r] {
			if bv == 0 {
				continue
			}
			c := s * float64(bv)
			for j, av := range d.A.Data[p*in : (p+1)*in] {
				row[j] += c * float64(av)
			}
		}
		var acc float64
		for _, v := range row {
			acc += v * v
		}
		dst[i] = float32(math.Sqrt(acc))
	}
}

func rowNorms(dst, w []float32, rows, cols int) {
	for i := range rows {
		var acc float64
		for _, v := range w[i*cols : (i+1)*cols] {
			acc += float64(v) * float64(v)
		}
		dst[i] = float32(math.Sqrt(acc))
	}
}

// Forward computes the DoRA output without a dense ΔW on the graph (the
// detached norm needs W0 + s·B·A once per step, outside the tape).
func (d *DoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	inv := g.Zeros(l.Out)
	d.rowNorms(l, inv.Data)
	for i, v := range inv.Data {
		inv.Data[i] = 1 / v
	}
	scale := g.Mul(d.M, inv) // m/‖W0+sBA‖, gradient to m only
	xd := g.Dropout(x, d.Dropout, d.rng)
	lora := g.Scale(d.delta(g, xd), d.Scale)
	if xd == x {
		y := g.MulRow(g.Add(g.MatMul(x, l.Weight, false, true), lora), scale)
		if l.Bias != nil {
			y = g.AddRow(y, l.Bias)
		}
		return y
	}
	ones := g.Zeros(l.Out)
	for i := range ones.Data {
		ones.Data[i] = 1
	}
	base := g.MulRow(g.MatMul(xd, l.Weight, false, true), g.Sub(scale, ones))
	return g.Add(l.Base(g, x), g.Add(base, g.MulRow(lora, scale)))
}

// Params returns A, B and the magnitude.
func (d *DoRA) Params() []nn.ParamRef {
	return append(d.LoRA.Params(), nn.ParamRef{Name: d.M.Name, T: d.M, LRMul: 1, Decay: true})
}

// Merged returns m ⊙ (W0 + s·B·A)/‖W0 + s·B·A‖_row.
func (d *DoRA) Merged(l *nn.Linear) []float32 {
	w := d.LoRA.Merged(l)
	n := make([]float32, l.Out)
	rowNorms(n, w, l.Out, l.In)
	for i := range l.Out {
		c := d.M.Data[i] / n[i]
		for j := range l.In {
			w[i*l.In+j] *= c
		}
	}
	return w
}

type doraMethod struct{ lowRank }

func (m *doraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	at, err := m.lowRank.Attach(layers, o, rng)
	if err != nil {
		return nil, err
	}
	la := at.(*loraAttachment)
	da := &doraAttachment{loraAttachment: la}
	for i, l := range la.layers {
		a := la.adapters[i]
		mag := nn.Param(l.Name+".lora_magnitude_vector", l.Out)
		d := &DoRA{LoRA: a, M: mag}
		d.rowNorms(l, mag.Data) // ‖W0‖_row: B = 0 at init
		l.Adapter = d
		da.doras = append(da.doras, d)
	}
	return da, nil
}

type doraAttachment struct {
	*loraAttachment
	doras []*DoRA
}

func (at *doraAttachment) Params() []nn.ParamRef {
	var ps []nn.ParamRef
	for _, d := range at.doras {
		ps = append(ps, d.Params()...)
	}
	return ps
}

func init() {
	Register("dora", &doraMethod{lowRank{
		info: Info{
			Name: "dora", Family: "lora", HasRank: true,
			Paper:         Paper{Title: "DoRA: Weight-Decomposed Low-Rank Adaptation", Authors: "Liu et al.", Year: 2024, ArXiv: "2402.09353"},
			Summary:       "W' = m·(W0+sBA)/‖W0+sBA‖_row; m from ‖W0‖_row, norm detached",
			AltOptions:    map[string]any{"rank": 4, "init": "gaussian"},
			Options:       loraOptions(8, 8, "kaiming", "gaussian"),
			ParamsFormula: "Σ r·(in+out) + out",
		},
		count: func(l LayerShape, r int) int64 { return loraParams(l, r) + int64(l.Out) },
	}})
}
