package methods

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// RoAd is 2-D rotary adaptation (Liao et al. 2024), as HF PEFT's
// peft.tuners.road computes it: the layer's whole output z = x·W0ᵀ + b is
// rotated in 2-D pairs, y = R·z. The Out features are cut into groups of
// group_size; inside a group, feature k of the first half pairs with
// feature k of the second half (a, b = a + group_size/2), and
//
//	y_a = c1_a·z_a − c2_a·z_b,   y_b = c1_b·z_b + c2_b·z_a,
//
// with per-feature coefficients from the trained angles θ and scales α:
//
//	road_1  c1 = α cos θ, c2 = α sin θ, one (θ, α) per pair: Out/2 each
//	        (a pair is a 2-D rotation by θ scaled by α)
//	road_2  c1 = α cos θ, c2 = α sin θ, one (θ, α) per feature: Out each
//	road_4  c1 = α₁ cos θ₁, c2 = α₂ sin θ₂, two of each per feature: 2·Out
//	        each (per group, the first group_size entries give c1 and the
//	        next group_size give c2, as HF reshapes them (-1, 2, group_size))
//
// Init (init_weights = true): θ = 0, α = 1, so R = I; false draws θ ~ N(0,
// 0.5²) then α ~ N(1, 0.5²) from the trial's stream (HF's nn.init.normal_).
// RoAd is multiplicative: the merged layer is W' = R·W0, b' = R·b (Merged
// and MergedBias), exactly HF's merge; the forward pass rotates z
// elementwise without forming R.
//
// Group size: HF PEFT raises unless group_size divides a layer's Out. Our
// small tasks have heads of 10, 26 and 98 outputs next to 64-wide layers,
// so a layer whose Out group_size does not divide uses the largest even
// divisor of Out below group_size instead (10 → 10, 98 → 14); the pairing
// is a fixed permutation of the output features, which the paper and HF's
// docs note has no effect on what the method can express. A layer with an
// odd Out cannot be cut into pairs at all: CheckLayers rejects it (the
// 5-class heads of safety-guard and teacher-shift; target fc1 and fc2
// there). group_size must be even.
type RoAd struct {
	Theta, Alpha *nn.Tensor // road_theta, road_alpha
	Variant      string
	Group        int // this layer's group size
	fn           *nn.Func
	cols         *nn.Func
}

// roadIndex returns, for output feature p, the entries of θ and α that
// give c1[p] and c2[p].
func roadIndex(variant string, group, p int) (i1, i2 int) {
	gi, w := p/group, p%group
	switch variant {
	case "road_1":
		i := gi*(group/2) + w%(group/2)
		return i, i
	case "road_2":
		return p, p
	default: // road_4
		i := gi*2*group + w
		return i, i + group
	}
}

// roadSize is the length of θ (and of α) for a layer with out features.
func roadSize(variant string, out int) int {
	switch variant {
	case "road_1":
		return out / 2
	case "road_2":
		return out
	}
	return 2 * out
}

// newRoAd builds the adapter's two differentiable ops: C (2×Out, rows c1
// and c2) from θ and α, and the pairwise rotation of z (N×Out) by C.
func newRoAd(theta, alpha *nn.Tensor, variant string, group, out int) *RoAd {
	r := &RoAd{Theta: theta, Alpha: alpha, Variant: variant, Group: group}
	i1s, i2s := make([]int, out), make([]int, out)
	for p := range out {
		i1s[p], i2s[p] = roadIndex(variant, group, p)
	}
	r.cols = &nn.Func{
		Name: "road_cols",
		Forward: func(c []float32, in []*nn.Tensor) {
			th, al := in[0].Data, in[1].Data
			for p := range out {
				i1, i2 := i1s[p], i2s[p]
				c[p] = al[i1] * float32(math.Cos(float64(th[i1])))
				c[out+p] = al[i2] * float32(math.Sin(float64(th[i2])))
			}
		},
		Backward: func(dc []float32, in []*nn.Tensor) {
			th, al := in[0], in[1]
			for p := range out {
				i1, i2 := i1s[p], i2s[p]
				c, s := float32(math.Cos(float64(th.Data[i1]))), float32(math.Sin(float64(th.Data[i1])))
				if al.Grad != nil {
					al.Grad[i1] += dc[p] * c
				}
				if th.Grad != nil {
					th.Grad[i1] -= dc[p] * al.Data[i1] * s
				}
				c, s = float32(math.Cos(float64(th.Data[i2]))), float32(math.Sin(float64(th.Data[i2])))
				if al.Grad != nil {
					al.Grad[i2] += dc[out+p] * s
				}
				if th.Grad != nil {
					th.Grad[i2] += dc[out+p] * al.Data[i2] * c
				}
			}
		},
	}
	half := group / 2
	r.fn = &nn.Func{
		Name: "road_rotate",
		Forward: func(y []float32, in []*nn.Tensor) {
			z, c := in[0].Data, in[1].Data
			roadRotate(y, z, c[:out], c[out:], group, len(z)/out, out, 1)
		},
		Backward: func(dy []float32, in []*nn.Tensor) {
			zt, ct := in[0], in[1]
			z, c1, c2 := zt.Data, ct.Data[:out], ct.Data[out:]
			n := len(z) / out
			for row := range n {
				o := row * out
				for g0 := 0; g0 < out; g0 += group {
					for k := range half {
						a, b := g0+k, g0+k+half
						dya, dyb := dy[o+a], dy[o+b]
						za, zb := z[o+a], z[o+b]
						if zt.Grad != nil {
							zt.Grad[o+a] += dya*c1[a] + dyb*c2[b]
							zt.Grad[o+b] += dyb*c1[b] - dya*c2[a]
						}
						if ct.Grad != nil {
							ct.Grad[a] += dya * za
							ct.Grad[b] += dyb * zb
							ct.Grad[out+a] -= dya * zb
							ct.Grad[out+b] += dyb * za
						}
					}
				}
			}
		},
	}
	return r
}

// roadRotate writes y = R·z for vecs vectors of out features each: feature
// p of vector v is at v·vstride + p·pstride (z N×Out: vstride Out, pstride
// 1; W0 Out×In, rotated along Out: vstride 1, pstride In).
func roadRotate(y, z, c1, c2 []float32, group, vecs, vstride, pstride int) {
	half := group / 2
	out := len(c1)
	for v := range vecs {
		base := v * vstride
		for g0 := 0; g0 < out; g0 += group {
			for k := range half {
				a, b := g0+k, g0+k+half
				ia, ib := base+a*pstride, base+b*pstride
				za, zb := z[ia], z[ib]
				y[ia] = za*c1[a] - zb*c2[a]
				y[ib] = zb*c1[b] + za*c2[b]
			}
		}
	}
}

// Forward computes R·(x·W0ᵀ + b).
func (r *RoAd) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	z := l.Base(g, x)
	c := g.Custom(r.cols, []int{2, l.Out}, r.Theta, r.Alpha)
	return g.Custom(r.fn, z.Shape, z, c)
}

// Params returns θ and α, with weight decay as HF's Trainer applies it.
func (r *RoAd) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: r.Theta.Name, T: r.Theta, LRMul: 1, Decay: true},
		{Name: r.Alpha.Name, T: r.Alpha, LRMul: 1, Decay: true},
	}
}

// coefficients returns c1 and c2 (Out each).
func (r *RoAd) coefficients(out int) (c1, c2 []float32) {
	c := make([]float32, 2*out)
	r.cols.Forward(c, []*nn.Tensor{r.Theta, r.Alpha})
	return c[:out], c[out:]
}

// Merged returns R·W0.
func (r *RoAd) Merged(l *nn.Linear) []float32 {
	c1, c2 := r.coefficients(l.Out)
	w := make([]float32, len(l.Weight.Data))
	roadRotate(w, l.Weight.Data, c1, c2, r.Group, l.In, 1, l.In)
	return w
}

// MergedBias returns R·b.
func (r *RoAd) MergedBias(l *nn.Linear) []float32 {
	if l.Bias == nil {
		return nil
	}
	c1, c2 := r.coefficients(l.Out)
	b := make([]float32, l.Out)
	roadRotate(b, l.Bias.Data, c1, c2, r.Group, 1, l.Out, 1)
	return b
}

type roadMethod struct{}

func (roadMethod) Info() Info {
	return Info{
		Name: "road", Family: "rotation",
		Paper:      Paper{Title: "2D Rotary Adaptation: Efficient Fine-Tuning, Efficient Batching and Composability", Authors: "Liao et al.", Year: 2024, ArXiv: "2409.00119"},
		Summary:    "rotate the layer's output in 2-D feature pairs by trained angles θ and scales α (R = I at start)",
		AltOptions: map[string]any{"variant": "road_4", "group_size": 8},
		Options: []Option{
			stringOpt("variant", "road_1", []string{"road_1", "road_2", "road_4"}, "road_1: one (θ, α) per pair; road_2: per feature; road_4: two per feature"),
			intOpt("group_size", 64, 2, "even size of the feature groups whose halves pair up; a layer it does not divide uses the largest even divisor of its out below it"),
			boolOpt("init_weights", true, "θ = 0, α = 1 (R = I); false draws θ ~ N(0, 0.5²), α ~ N(1, 0.5²)"),
		},
		ParamsFormula: "Σ out (road_1), 2·out (road_2), 4·out (road_4)",
		// HF PEFT's docs: "around 1e-3", above LoRA's.
		LR: 1e-3,
	}
}

// roadGroup returns the group size a layer with out features uses.
func roadGroup(gs int, l LayerShape) (int, error) {
	if gs%2 != 0 {
		return 0, optionError("road", "group_size", fmt.Sprintf("%d, want an even size (its halves pair up)", gs))
	}
	if l.Out%2 != 0 {
		return 0, optionError("road", "group_size", fmt.Sprintf("layer %s (%d×%d) has an odd number of outputs, which RoAd cannot cut into pairs; leave it out of the targets", l.Name, l.Out, l.In))
	}
	for g := gs; g >= 2; g -= 2 {
		if l.Out%g == 0 {
			return g, nil
		}
	}
	return 2, nil // unreachable: 2 divides an even Out
}

func (roadMethod) CheckLayers(o Options, layers []LayerShape) error {
	for _, l := range layers {
		if _, err := roadGroup(o.Int("group_size"), l); err != nil {
			return err
		}
	}
	return nil
}

func (roadMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	variant := o.String("variant")
	return attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		group, err := roadGroup(o.Int("group_size"), Shapes([]*nn.Linear{l})[0])
		if err != nil {
			return nil, err
		}
		n := roadSize(variant, l.Out)
		theta, alpha := nn.Param(l.Name+".road_theta", n), nn.Param(l.Name+".road_alpha", n)
		if o.Bool("init_weights") {
			for i := range alpha.Data {
				alpha.Data[i] = 1
			}
		} else {
			rng.FillNormal(theta, 0, 0.5)
			rng.FillNormal(alpha, 1, 0.5)
		}
		return newRoAd(theta, alpha, variant, group, l.Out), nil
	})
}

func (roadMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += 2 * int64(roadSize(o.String("variant"), l.Out))
	}
	return n
}

func init() { Register("road", roadMethod{}) }
