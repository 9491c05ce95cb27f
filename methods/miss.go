package methods

import (
	"fmt"

	"peftbench/nn"
)

// MiSS is matrix shard sharing (Kang and Yin 2024; it absorbed Bone, the
// block-affine adaptation of the paper's first version), as HF PEFT's
// peft.tuners.miss computes it. One option, init_weights, selects the form:
//
//   - "true" (HF's default, "balance"): one trainable shard D (r×Out,
//     HF's miss_block) is shared by every r-wide column block of W:
//
//     y = x·W0ᵀ + b + (Σ_k x_k)·D,   ΔW = [Dᵀ Dᵀ … Dᵀ] (Out×In),
//
//     where x_k = x[k·r:(k+1)·r] are the ⌈In/r⌉ shards of the input, the
//     last zero-padded when r does not divide In (HF pads x with F.pad), so
//     ΔW's last column block is Dᵀ[:, :In mod r]. D starts at 0. When
//     r > In the rows of D past In never meet an input (HF allows it, and
//     so does this; those rows get no gradient). Params r·Out.
//
//   - "false": the balance form with D Kaiming-uniform (a = √5, fan-in
//     Out, as HF's kaiming_uniform_ on the r×Out block), so ΔW ≠ 0 at step 0
//     (HF: for testing).
//
//   - "mini": D_mini (r×mini_r) repeated Out/mini_r times along the output
//     axis, D = [D_mini … D_mini], then the balance form; needs mini_r | Out.
//     Params r·mini_r.
//
//   - "bat" (Bone): W0 tiled into r×r blocks W_ij (i over Out/r, j over
//     In/r) and one trainable r×r block B_i per block row (HF's miss_block
//     of shape (Out/r)×r×r):
//
//     ΔW_ij = W_ij·B_i + B_i,   y = x·(W0 + ΔW)ᵀ + b,
//
//     B = 0 at step 0; needs r | In and r | Out. Params Out·r. The forward
//     builds W0 + ΔW (Out·In·r multiply-adds per step, more than LoRA's
//     N·r·(In+Out) for small batches: the update depends on W0, which is
//     what bat is for). HF applies no dropout in this form, nor does this.
//
// The balance and mini forms never form ΔW: the input is folded into r
// columns (a custom op) and multiplied by D, as HF does. miss_dropout
// drops the adapter path's input while training (balance, false, mini).
// Defaults are HF's: r = 64, mini_r = 1, miss_dropout = 0,
// init_weights = true.
type MiSS struct {
	// D is miss_block: r×Out (true, false), r×mini_r (mini) or
	// (Out/r)×r×r (bat).
	D       *nn.Tensor
	Form    string // "true", "false", "mini" or "bat"
	Rank    int
	MiniR   int
	Dropout float32

	fold, tile, bat *nn.Func
	rng             *nn.RNG
}

// newMiSS returns the MiSS adapter of l for form, with D zero (drawn by
// the caller for init_weights=false).
func newMiSS(l *nn.Linear, form string, r, miniR int, dropout float32) *MiSS {
	m := &MiSS{Form: form, Rank: r, MiniR: miniR, Dropout: dropout}
	name := l.Name + ".miss_block"
	switch form {
	case "bat":
		m.D = nn.Param(name, l.Out/r, r, r)
		m.bat = missBatFunc(l.Out, l.In, r)
	case "mini":
		m.D = nn.Param(name, r, miniR)
		m.tile = missTileFunc(r, miniR, l.Out)
	default:
		m.D = nn.Param(name, r, l.Out)
	}
	m.fold = missFoldFunc(l.In, r)
	return m
}

// Forward computes x·W0ᵀ + b + fold(drop(x))·D (bat: x·(W0 + ΔW)ᵀ + b).
func (m *MiSS) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	if m.Form == "bat" {
		return g.Linear(x, m.batWeight(g, l), l.Bias)
	}
	xd := g.Dropout(x, m.Dropout, m.rng)
	s := g.Custom(m.fold, []int{x.Rows(), m.Rank}, xd)
	d := m.D
	if m.Form == "mini" {
		d = g.Custom(m.tile, []int{m.Rank, l.Out}, m.D)
	}
	return g.Add(l.Base(g, x), g.MatMul(s, d, false, false))
}

func (m *MiSS) batWeight(g *nn.Graph, l *nn.Linear) *nn.Tensor {
	return g.Custom(m.bat, []int{l.Out, l.In}, l.Weight, m.D)
}

// Params returns miss_block (with weight decay, as HF's Trainer decays
// every non-bias parameter).
func (m *MiSS) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: m.D.Name, T: m.D, LRMul: 1, Decay: true}}
}

// Merged returns W0 + ΔW.
func (m *MiSS) Merged(l *nn.Linear) []float32 {
	if m.Form == "bat" {
		return mergedWeight(m.batWeight, l)
	}
	w := append([]float32(nil), l.Weight.Data...)
	r := m.Rank
	for o := range l.Out {
		c := o // column of D
		cols := l.Out
		if m.Form == "mini" {
			c, cols = o%m.MiniR, m.MiniR
		}
		row := w[o*l.In : (o+1)*l.In]
		for j := range row {
			row[j] += m.D.Data[(j%r)*cols+c]
		}
	}
	return w
}

// missFoldFunc sums the r-wide shards of each input row (the last one
// zero-padded): y[n, c] = Σ_k x[n, k·r + c] over k·r + c < in.
func missFoldFunc(in, r int) *nn.Func {
	return &nn.Func{
		Name: "miss_fold",
		Forward: func(y []float32, ins []*nn.Tensor) {
			x := ins[0].Data
			clear(y)
			for n := range len(x) / in {
				yr, xr := y[n*r:(n+1)*r], x[n*in:(n+1)*in]
				for k := 0; k < in; k += r {
					for c, v := range xr[k:min(k+r, in)] {
						yr[c] += v
					}
				}
			}
		},
		Backward: func(dy []float32, ins []*nn.Tensor) {
			gx := ins[0].Grad
			if gx == nil {
				return
			}
			for n := range len(gx) / in {
				dr, gr := dy[n*r:(n+1)*r], gx[n*in:(n+1)*in]
				for k := 0; k < in; k += r {
					for c := range gr[k:min(k+r, in)] {
						gr[k+c] += dr[c]
					}
				}
			}
		},
	}
}

// missTileFunc repeats D_mini (r×miniR) along its columns to r×out:
// y[p, o] = D[p, o mod miniR] (torch's repeat(1, out/miniR)).
func missTileFunc(r, miniR, out int) *nn.Func {
	return &nn.Func{
		Name: "miss_tile",
		Forward: func(y []float32, ins []*nn.Tensor) {
			d := ins[0].Data
			for p := range r {
				for o := range out {
					y[p*out+o] = d[p*miniR+o%miniR]
				}
			}
		},
		Backward: func(dy []float32, ins []*nn.Tensor) {
			gd := ins[0].Grad
			if gd == nil {
				return
			}
			for p := range r {
				for o := range out {
					gd[p*miniR+o%miniR] += dy[p*out+o]
				}
			}
		},
	}
}

// missBatFunc builds Bone's W' = W + ΔW, ΔW_ij = W_ij·B_i + B_i, from
// W (out×in) and B ((out/r)×r×r): for row o = i·r + a and column
// j·r + c, W'[o, j·r+c] = W[o, j·r+c] + Σ_b W[o, j·r+b]·B_i[b, c] + B_i[a, c].
func missBatFunc(out, in, r int) *nn.Func {
	return &nn.Func{
		Name: "miss_bat",
		Forward: func(y []float32, ins []*nn.Tensor) {
			w, bl := ins[0].Data, ins[1].Data
			for o := range out {
				i, a := o/r, o%r
				bi := bl[i*r*r : (i+1)*r*r]
				wr, yr := w[o*in:(o+1)*in], y[o*in:(o+1)*in]
				for j := 0; j < in; j += r {
					yb := yr[j : j+r]
					for c := range r {
						yb[c] = wr[j+c] + bi[a*r+c]
					}
					for b, wv := range wr[j : j+r] {
						for c, bv := range bi[b*r : (b+1)*r] {
							yb[c] += wv * bv
						}
					}
				}
			}
		},
		Backward: func(dy []float32, ins []*nn.Tensor) {
			wt, bt := ins[0], ins[1]
			w, bl := wt.Data, bt.Data
			for o := range out {
				i, a := o/r, o%r
				bi := bl[i*r*r : (i+1)*r*r]
				wr, dr := w[o*in:(o+1)*in], dy[o*in:(o+1)*in]
				for j := 0; j < in; j += r {
					db := dr[j : j+r]
					if bt.Grad != nil {
						gi := bt.Grad[i*r*r : (i+1)*r*r]
						for c, d := range db {
							gi[a*r+c] += d
						}
						for b, wv := range wr[j : j+r] {
							for c, d := range db {
								gi[b*r+c] += wv * d
							}
						}
					}
					if wt.Grad != nil {
						gw := wt.Grad[o*in+j : o*in+j+r]
						for b := range r {
							s := db[b]
							for c, d := range db {
								s += d * bi[b*r+c]
							}
							gw[b] += s
						}
					}
				}
			}
		},
	}
}

type missMethod struct{}

func (missMethod) Info() Info {
	return Info{
		Name: "miss", Family: "shard-sharing", HasRank: true, RankAboveMin: true,
		Paper: Paper{Title: "MiSS: Revisiting the Trade-off in LoRA with an Efficient Shard-Sharing Structure",
			Authors: "Kang and Yin", Year: 2024, ArXiv: "2409.15371"},
		Summary:   "ΔW = [Dᵀ Dᵀ … Dᵀ]: one trainable r×out shard shared by all r-wide column blocks (bat: ΔW_ij = W_ij·B_i + B_i)",
		RankMeans: "shard width r: the input is cut into ⌈in/r⌉ r-wide shards that are summed before D (bat: the r×r block size)",
		Options: []Option{
			intOpt("rank", 64, 1, "shard width r (HF r); init_weights=bat: the block size, dividing in and out"),
			intOpt("mini_r", 1, 1, "init_weights=mini: D is r×mini_r, repeated out/mini_r times along the output axis (mini_r | out)"),
			{Name: "miss_dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true,
				Doc: "dropout on the adapter path's input while training (not in the bat form, as in HF)"},
			stringOpt("init_weights", "true", []string{"true", "false", "bat", "mini"},
				"true: balance (D = 0); false: balance with D Kaiming-uniform; bat: Bone's block-affine ΔW_ij = W_ij·B_i + B_i; mini: D_mini r×mini_r"),
		},
		ParamsFormula: "Σ r·out (init_weights=mini: Σ r·mini_r)",
		AltOptions:    map[string]any{"init_weights": "bat", "rank": 16},
	}
}

// CheckLayers checks bat's r | in, r | out and mini's mini_r | out.
func (missMethod) CheckLayers(o Options, layers []LayerShape) error {
	r, miniR := o.Int("rank"), o.Int("mini_r")
	for _, l := range layers {
		switch o.String("init_weights") {
		case "bat":
			if l.In%r != 0 || l.Out%r != 0 {
				return optionError("miss", "rank", fmt.Sprintf("%d must divide both dimensions of layer %s (%d×%d) for init_weights=bat (r×r blocks)", r, l.Name, l.Out, l.In))
			}
		case "mini":
			if l.Out%miniR != 0 {
				return optionError("miss", "mini_r", fmt.Sprintf("%d must divide out = %d of layer %s (%d×%d) for init_weights=mini", miniR, l.Out, l.Name, l.Out, l.In))
			}
		}
	}
	return nil
}

func (missMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	form, r, miniR := o.String("init_weights"), o.Int("rank"), o.Int("mini_r")
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		m := newMiSS(l, form, r, miniR, float32(o.Float("miss_dropout")))
		if form == "false" {
			rng.KaimingUniform(m.D, l.Out) // fan-in of the r×Out block
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return &missAttachment{at}, nil
}

func (missMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	r := int64(o.Int("rank"))
	for _, l := range layers {
		if o.String("init_weights") == "mini" {
			n += r * int64(o.Int("mini_r"))
		} else {
			n += r * int64(l.Out)
		}
	}
	return n
}

func init() { Register("miss", missMethod{}) }

// missAttachment turns the adapters' dropout on and off.
type missAttachment struct{ *layerAttachment }

func (at *missAttachment) SetTraining(rng *nn.RNG) {
	for _, a := range at.adapters {
		m := a.(*MiSS)
		m.rng = childRNG(rng, m.D.Name)
	}
}
