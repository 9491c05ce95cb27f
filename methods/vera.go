package methods

import (
	"fmt"

	"peftbench/nn"
)

// VeRA is vector-based random matrix adaptation:
//
//	y = x·W0ᵀ + b + ((drop(x)·Aᵀ) ⊙ d)·Bᵀ ⊙ b_v,   ΔW = Λ_b·B·Λ_d·A,
//
// with A (r×In) and B (Out×r) frozen, random and shared by every targeted
// layer of the same shape, and only the vectors d (r) and b_v (Out)
// trained. As in HF PEFT, A and B are Kaiming-uniform from a fixed
// projection seed (projection_prng_key = 0), independent of the trial
// seed; d starts at d_initial = 0.1 and b_v at 0, so ΔW = 0 at step 0.
type VeRA struct {
	A, B    *nn.Tensor // shared, frozen
	D, BV   *nn.Tensor // trainable scaling vectors: lambda_d (r), lambda_b (Out)
	Rank    int
	Dropout float32

	rng *nn.RNG
}

// Forward computes the VeRA output without forming ΔW.
func (v *VeRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	u := g.MulRow(g.MatMul(g.Dropout(x, v.Dropout, v.rng), v.A, false, true), v.D)
	return g.Add(l.Base(g, x), g.MulRow(g.MatMul(u, v.B, false, true), v.BV))
}

// Params returns d and b_v.
func (v *VeRA) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: v.D.Name, T: v.D, LRMul: 1, Decay: true},
		{Name: v.BV.Name, T: v.BV, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + Λ_b·B·Λ_d·A.
func (v *VeRA) Merged(l *nn.Linear) []float32 {
	w := append([]float32(nil), l.Weight.Data...)
	r := v.Rank
	for i := range l.Out {
		row := w[i*l.In : (i+1)*l.In]
		acc := make([]float64, l.In)
		for p := range r {
			c := float64(v.B.Data[i*r+p]) * float64(v.D.Data[p])
			if c == 0 {
				continue
			}
			for j, a := range v.A.Data[p*l.In : (p+1)*l.In] {
				acc[j] += c * float64(a)
			}
		}
		for j := range row {
			row[j] = float32(float64(row[j]) + float64(v.BV.Data[i])*acc[j])
		}
	}
	return w
}

type veraMethod struct{}

func (veraMethod) Info() Info {
	return Info{
		Name: "vera", Family: "vector-scaling", HasRank: true, RankAboveMin: true,
		Paper:   Paper{Title: "VeRA: Vector-based Random Matrix Adaptation", Authors: "Kopiczko, Blankevoort and Asano", Year: 2023, ArXiv: "2310.11454"},
		Summary: "ΔW = Λ_b·B·Λ_d·A with A, B frozen random and shared; only d and b train",
		Options: []Option{
			intOpt("rank", 256, 1, "rank r of the shared random projections"),
			floatOpt("d_initial", 0.1, nil, nil, "initial value of every element of d"),
			intOpt("projection_seed", 0, 0, "seed of the shared frozen A and B (projection_prng_key)"),
			{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
		},
		ParamsFormula: "Σ (r + out)",
	}
}

func (veraMethod) Attach(layers []*nn.Linear, o Options, _ *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	type shape struct{ out, in int }
	shared := map[shape][2]*nn.Tensor{}
	at := &veraAttachment{layers: layers}
	for _, l := range layers {
		sh := shape{l.Out, l.In}
		ab, ok := shared[sh]
		if !ok {
			// One stream per shape, so a layer's projections do not depend
			// on which other layers are targeted.
			rng := nn.NewRNG(uint64(o.Int("projection_seed")), fmt.Sprintf("vera/%dx%d", l.Out, l.In))
			a, b := nn.New(r, l.In), nn.New(l.Out, r)
			a.Name = fmt.Sprintf("vera_A.%dx%d", l.Out, l.In)
			b.Name = fmt.Sprintf("vera_B.%dx%d", l.Out, l.In)
			rng.KaimingUniform(a, l.In)
			rng.KaimingUniform(b, r)
			ab = [2]*nn.Tensor{a, b}
			shared[sh] = ab
		}
		d := nn.Param(l.Name+".vera_lambda_d", r)
		for i := range d.Data {
			d.Data[i] = float32(o.Float("d_initial"))
		}
		v := &VeRA{A: ab[0], B: ab[1], D: d, BV: nn.Param(l.Name+".vera_lambda_b", l.Out),
			Rank: r, Dropout: float32(o.Float("dropout"))}
		l.Adapter = v
		at.adapters = append(at.adapters, v)
	}
	return at, nil
}

func (veraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += int64(o.Int("rank") + l.Out)
	}
	return n
}

type veraAttachment struct {
	layers   []*nn.Linear
	adapters []*VeRA
}

func (at *veraAttachment) Layers() []*nn.Linear { return at.layers }

func (at *veraAttachment) Params() []nn.ParamRef {
	var ps []nn.ParamRef
	for _, v := range at.adapters {
		ps = append(ps, v.Params()...)
	}
	return ps
}

func (at *veraAttachment) SetTraining(rng *nn.RNG) {
	for _, v := range at.adapters {
		v.rng = childRNG(rng, v.D.Name)
	}
}

func init() { Register("vera", veraMethod{}) }
