package methods

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

// TestSHiRAMaskEqualsHF: the random mask is HF's random_mask — the
// positions torch.where lists for a 6×4 layer at r = 1 (K = 10), printed
// by Debian torch 1.13 for seeds None (torch's default seed), 0 and 42.
func TestSHiRAMaskEqualsHF(t *testing.T) {
	l := nn.NewLinear("l", 4, 6, true, nn.NewRNG(1, "w"))
	for _, c := range []struct {
		seed uint64
		want []int32
	}{
		{67280421310721, []int32{1, 3, 6, 8, 9, 13, 14, 16, 19, 23}},
		{0, []int32{1, 2, 3, 4, 5, 7, 12, 13, 17, 20}},
		{42, []int32{2, 3, 6, 10, 14, 15, 17, 18, 19, 22}},
	} {
		if got := shiraMask(l, 10, "random", c.seed); !slices.Equal(got, c.want) {
			t.Errorf("seed %d: mask %v, HF's %v", c.seed, got, c.want)
		}
	}
}

// TestSHiRAChangesOnlyMaskedEntries: after training, W0 + ΔW differs from
// W0 exactly at the layer's r·(out+in) distinct mask positions, by the
// trained values, and the forward is x·(W0 + ΔW)ᵀ + b; a magnitude mask holds the largest |W0|; layers of one
// shape share the random mask (one generator seed per layer, as HF).
func TestSHiRAChangesOnlyMaskedEntries(t *testing.T) {
	for _, c := range []map[string]any{
		{"rank": 8},
		{"rank": 4, "random_seed": 3, "init_weights": false},
		{"rank": 8, "mask_type": "magnitude"},
	} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			for _, m := range refModels(1) {
				att := attachRef(t, m, "shira", c)
				o, _ := ResolveOptions("shira", 0, c)
				r := o.Int("rank")
				masks := map[[2]int][]int32{}
				train(t, m, att, 4, 1e-2)
				for _, l := range m.targets {
					s := l.Adapter.(*SHiRA)
					k := r * (l.Out + l.In)
					if len(s.Idx) != k || len(s.Values.Data) != k {
						t.Fatalf("%s: %d positions, %d values, want r·(out+in) = %d", l.Name, len(s.Idx), len(s.Values.Data), k)
					}
					on := make([]bool, l.Out*l.In)
					for _, i := range s.Idx {
						if on[i] {
							t.Fatalf("%s: position %d twice", l.Name, i)
						}
						on[i] = true
					}
					merged := l.Merged()
					w := l.Weight.Data
					moved := 0
					for i := range merged {
						switch {
						case !on[i] && merged[i] != w[i]:
							t.Fatalf("%s: entry %d is off the mask but changed: %v → %v", l.Name, i, w[i], merged[i])
						case on[i] && merged[i] != w[i]:
							moved++
						}
					}
					for k, i := range s.Idx {
						if merged[i] != w[i]+s.Values.Data[k] {
							t.Fatalf("%s: entry %d is %v, want W0 + value %v", l.Name, i, merged[i], w[i]+s.Values.Data[k])
						}
					}
					// the adapter's forward is x·(W0 + S)ᵀ + b
					x := nn.New(7, l.In)
					nn.NewRNG(5, "x").FillNormal(x, 0, 1)
					g := &nn.Graph{NoGrad: true}
					y := slices.Clone(l.Forward(g, x).Data)
					ref := g.Linear(x, nn.FromData(merged, l.Out, l.In), l.Bias).Data
					if e := maxAbs(sub(y, ref)); e > 1e-5*max(1, maxAbs(ref)) {
						t.Errorf("%s: forward off x·(W0 + S)ᵀ + b by %g", l.Name, e)
					}
					if moved < k/2 {
						t.Errorf("%s: only %d of %d masked entries moved in training", l.Name, moved, k)
					}
					if o.String("mask_type") == "magnitude" {
						lo, hi := math.Inf(1), 0.0
						for i, v := range w {
							if on[i] {
								lo = min(lo, math.Abs(float64(v)))
							} else {
								hi = max(hi, math.Abs(float64(v)))
							}
						}
						if lo < hi {
							t.Errorf("%s: magnitude mask holds |W0| down to %g, leaves out %g", l.Name, lo, hi)
						}
					} else {
						sh := [2]int{l.Out, l.In}
						if prev, ok := masks[sh]; ok && !slices.Equal(prev, s.Idx) {
							t.Errorf("%s: random mask differs from another %d×%d layer's", l.Name, l.Out, l.In)
						}
						masks[sh] = s.Idx
					}
				}
			}
		})
	}
}

func shiraExport(l *nn.Linear) map[string][]float32 {
	return map[string][]float32{"shira_weight": slices.Clone(l.Adapter.(*SHiRA).Values.Data)}
}

func init() {
	addTorchCase(torchSpec{name: "shira", method: "shira", opts: map[string]any{"rank": 2}, lr: 1e-2, clip: 0.05})
	addTorchCase(torchSpec{name: "shira-magnitude", method: "shira", opts: map[string]any{"rank": 2, "mask_type": "magnitude", "init_weights": false},
		lr: 1e-2, clip: 0.05, export: shiraExport})
}

// TestSHiRARoutesAgree: the dense route (W0 + S applied as one linear op)
// and the sparse one (x·W0ᵀ + x·Sᵀ as a custom op) give the same outputs
// and the same gradients of x, the values and the bias, on a layer shape
// each is chosen for and on one where both are forced.
func TestSHiRARoutesAgree(t *testing.T) {
	for _, sz := range [][2]int{{48, 40}, {600, 400}} { // dense at r = 2; sparse at r = 2
		out, in := sz[0], sz[1]
		rng := nn.NewRNG(3, "routes")
		l := nn.NewLinear("l", in, out, true, rng)
		if _, err := Attach("shira", []*nn.Linear{l}, map[string]any{"rank": 2, "init_weights": false}, rng); err != nil {
			t.Fatal(err)
		}
		s := l.Adapter.(*SHiRA)
		if want := 64*2*(out+in) >= out*in; s.Dense != want {
			t.Errorf("%d×%d: Dense = %v, want %v", out, in, s.Dense, want)
		}
		x := nn.Param("x", 7, in)
		rng.FillNormal(x, 0, 1)
		run := func(dense bool) (y, gx, gv, gb []float32) {
			s.Dense = dense
			nn.ZeroGrads([]nn.ParamRef{{T: x}, {T: s.Values}, {T: l.Bias}})
			g := nn.NewGraph()
			out := l.Forward(g, x)
			w := g.Const(slices.Clone(out.Data), out.Shape...)
			g.Backward(g.Sum(g.Mul(out, w)))
			return slices.Clone(out.Data), slices.Clone(x.Grad), slices.Clone(s.Values.Grad), slices.Clone(l.Bias.Grad)
		}
		dense := s.Dense
		y0, gx0, gv0, gb0 := run(false)
		y1, gx1, gv1, gb1 := run(true)
		s.Dense = dense
		for _, c := range []struct {
			name string
			a, b []float32
		}{{"output", y0, y1}, {"∂x", gx0, gx1}, {"∂values", gv0, gv1}, {"∂bias", gb0, gb1}} {
			if d := relDiff(c.a, c.b); d > 1e-5 {
				t.Errorf("%d×%d: %s differs by %.3g between the routes", out, in, c.name, d)
			}
		}
	}
}
