package methods

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// VeRA is vector-based random matrix adaptation:
//
//	y = x·W0ᵀ + b + ((drop(x)·Aᵀ) ⊙ d)·Bᵀ ⊙ b_v,   ΔW = Λ_b·B·Λ_d·A,
//
// with only the vectors d (r) and b_v (Out) trained. As in the paper and
// HF PEFT, ONE frozen random pair serves every targeted layer: A (r×maxIn)
// and B (maxOut×r), sized to the largest input and output dimensions of the
// targeted layers; a layer uses the slices A[:, :In] and B[:Out, :]. Both
// are Kaiming-uniform with gain √2 (bound √(6/fan_in): fan_in = maxIn for A,
// r for B), drawn A then B from torch.Generator().manual_seed(
// projection_seed) — nn.TorchGenerator reproduces that generator, so the
// matrices equal HF PEFT's for the same projection_prng_key, independent of
// the trial seed. d starts at d_initial = 0.1 and b_v at 0, so ΔW = 0 at
// step 0.
type VeRA struct {
	A, B    *nn.Tensor // this layer's slices of the shared frozen pair: r×In, Out×r
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
		Paper:      Paper{Title: "VeRA: Vector-based Random Matrix Adaptation", Authors: "Kopiczko, Blankevoort and Asano", Year: 2023, ArXiv: "2310.11454"},
		Summary:    "ΔW = Λ_b·B·Λ_d·A with A, B frozen random and shared; only d and b train",
		AltOptions: map[string]any{"rank": 64, "d_initial": 0.5, "projection_seed": 3},
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
	a, b := veraProjections(layers, r, uint64(o.Int("projection_seed")))
	maxIn := a.Shape[1]
	// Slices are frozen copies, one per layer shape (layers of one shape
	// share theirs): the forward pass needs contiguous r×In and Out×r.
	type shape struct{ out, in int }
	slices := map[shape][2]*nn.Tensor{}
	at := &veraAttachment{layers: layers, A: a, B: b}
	for _, l := range layers {
		sh := shape{l.Out, l.In}
		ab, ok := slices[sh]
		if !ok {
			sa, sb := nn.New(r, l.In), nn.New(l.Out, r)
			sa.Name, sb.Name = fmt.Sprintf("vera_A[:, :%d]", l.In), fmt.Sprintf("vera_B[:%d, :]", l.Out)
			for p := range r {
				copy(sa.Data[p*l.In:(p+1)*l.In], a.Data[p*maxIn:p*maxIn+l.In])
			}
			copy(sb.Data, b.Data[:l.Out*r])
			ab = [2]*nn.Tensor{sa, sb}
			slices[sh] = ab
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

// veraProjections returns the shared frozen pair for layers, as HF PEFT's
// VeraModel draws it: A (r×maxIn) then B (maxOut×r), each U(−√(6/fan_in),
// √(6/fan_in)) from one torch generator seeded with seed.
func veraProjections(layers []*nn.Linear, r int, seed uint64) (a, b *nn.Tensor) {
	var maxIn, maxOut int
	for _, l := range layers {
		maxIn, maxOut = max(maxIn, l.In), max(maxOut, l.Out)
	}
	gen := nn.NewTorchGenerator(seed)
	a, b = nn.New(r, maxIn), nn.New(maxOut, r)
	a.Name, b.Name = "vera_A", "vera_B"
	for _, t := range []*nn.Tensor{a, b} {
		bound := math.Sqrt(6 / float64(t.Shape[1]))
		gen.FillUniform(t, -bound, bound)
	}
	return a, b
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
	// A and B are the shared frozen projections (r×maxIn, maxOut×r).
	A, B *nn.Tensor
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
