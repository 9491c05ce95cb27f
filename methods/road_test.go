package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

// roadExpected builds HF's R (Out×Out) from θ and α independently of the
// adapter: the coefficient columns as _prepare_cols lays them out (road_1:
// each group's G/2 values repeated for both halves; road_4: per group, G
// values for the first column then G for the second), placed as
// _get_delta_weight places them: c1 on the diagonal, and for a pair (a, b)
// of a group's halves R[a][b] = −c2[a], R[b][a] = c2[b].
func roadExpected(variant string, group, out int, theta, alpha []float32) [][]float64 {
	var c1, c2 []float64
	switch variant {
	case "road_1":
		for g := 0; g < len(theta); g += group / 2 {
			for range 2 {
				for i := g; i < g+group/2; i++ {
					c1 = append(c1, float64(alpha[i])*math.Cos(float64(theta[i])))
					c2 = append(c2, float64(alpha[i])*math.Sin(float64(theta[i])))
				}
			}
		}
	case "road_2":
		for i := range theta {
			c1 = append(c1, float64(alpha[i])*math.Cos(float64(theta[i])))
			c2 = append(c2, float64(alpha[i])*math.Sin(float64(theta[i])))
		}
	case "road_4":
		for g := 0; g < len(theta); g += 2 * group {
			for i := g; i < g+group; i++ {
				c1 = append(c1, float64(alpha[i])*math.Cos(float64(theta[i])))
				c2 = append(c2, float64(alpha[i+group])*math.Sin(float64(theta[i+group])))
			}
		}
	}
	r := make([][]float64, out)
	for i := range r {
		r[i] = make([]float64, out)
		r[i][i] = c1[i]
	}
	for g := 0; g < out; g += group {
		for k := range group / 2 {
			a, b := g+k, g+k+group/2
			r[a][b] = -c2[a]
			r[b][a] = c2[b]
		}
	}
	return r
}

// TestRoAdPairRotation trains RoAd and checks its defining property: the
// adapter's transform of the output (read off its forward pass on the
// identity) is R from θ and α, non-zero only in the 2×2 blocks of the
// pairs (for road_1 each block a rotation scaled by α), and the merged
// weight and bias are exactly R·W0 and R·b.
func TestRoAdPairRotation(t *testing.T) {
	for _, c := range []struct {
		name string
		opts map[string]any
	}{
		{"road_1", map[string]any{"init_weights": false}},
		{"road_1 trained from identity", map[string]any{"group_size": 8}},
		{"road_2", map[string]any{"variant": "road_2", "group_size": 8, "init_weights": false}},
		{"road_4", map[string]any{"variant": "road_4", "group_size": 16, "init_weights": false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := refModels(1)[0]
			att := attachRef(t, m, "road", c.opts)
			train(t, m, att, 8, 2e-2)
			l := m.targets[1] // fc2, 256×256
			a := l.Adapter.(*RoAd)
			out := l.Out
			if a.Variant == "road_1" && c.opts["init_weights"] != false {
				if maxAbs(a.Theta.Data) < 1e-4 {
					t.Fatalf("training left θ at %g", maxAbs(a.Theta.Data))
				}
			}
			// the forward on W0 = I, b = 0, x = I gives rows (R·e_p)ᵀ
			probe := &nn.Linear{Name: "probe", In: out, Out: out, Weight: nn.New(out, out)}
			x := nn.New(out, out)
			for i := range out {
				probe.Weight.Data[i*out+i] = 1
				x.Data[i*out+i] = 1
			}
			y := a.Forward(&nn.Graph{NoGrad: true}, probe, x).Data
			want := roadExpected(a.Variant, a.Group, out, a.Theta.Data, a.Alpha.Data)
			half := a.Group / 2
			var dr float64
			for i := range out {
				for j := range out {
					got := float64(y[j*out+i]) // R[i][j]
					dr = max(dr, math.Abs(got-want[i][j]))
					inPair := i == j || (i/a.Group == j/a.Group && (i%a.Group)%half == (j%a.Group)%half)
					if !inPair && got != 0 {
						t.Fatalf("R[%d][%d] = %g outside the pair blocks", i, j, got)
					}
				}
			}
			if dr > 1e-6 {
				t.Errorf("R differs from HF's R(θ, α) by %.3g", dr)
			}
			if a.Variant == "road_1" { // a scaled 2-D rotation per pair
				for g := 0; g < out; g += a.Group {
					for k := range half {
						p, q := g+k, g+k+half
						raa, rab, rba, rbb := float64(y[p*out+p]), float64(y[q*out+p]), float64(y[p*out+q]), float64(y[q*out+q])
						i := g/2 + k
						al, th := float64(a.Alpha.Data[i]), float64(a.Theta.Data[i])
						if math.Abs(raa-rbb) > 1e-7 || math.Abs(rab+rba) > 1e-7 ||
							math.Abs(raa-al*math.Cos(th)) > 1e-6 || math.Abs(rba-al*math.Sin(th)) > 1e-6 {
							t.Fatalf("pair (%d, %d): block [[%g %g] [%g %g]] is not α·rot(θ), α=%g θ=%g", p, q, raa, rab, rba, rbb, al, th)
						}
					}
				}
			}
			// merged weight and bias: exactly R·W0 and R·b
			w, b := l.Merged(), MergedBias(l)
			var dw, db float64
			for i := range out {
				for j := range l.In {
					var s float64
					for k := range out {
						s += want[i][k] * float64(l.Weight.Data[k*l.In+j])
					}
					dw = max(dw, math.Abs(float64(w[i*l.In+j])-s))
				}
				var s float64
				for k := range out {
					s += want[i][k] * float64(l.Bias.Data[k])
				}
				db = max(db, math.Abs(float64(b[i])-s))
			}
			if dw > 1e-6 || db > 1e-6 {
				t.Errorf("merged weight off R·W0 by %.3g, bias off R·b by %.3g", dw, db)
			}
			if d := mergeGap(m); d > 1e-6 {
				t.Errorf("merged model outputs %.3g away from the adapter's", d)
			}
		})
	}
}

// TestRoAdGroupSize checks the per-layer group size: group_size where it
// divides out, else the largest even divisor below it; odd out and odd
// group_size are errors naming the option.
func TestRoAdGroupSize(t *testing.T) {
	for _, c := range []struct {
		gs, out, want int // want 0: an error
	}{
		{64, 256, 64}, {64, 64, 64}, {64, 10, 10}, {64, 26, 26}, {64, 98, 14}, {8, 40, 8}, {16, 40, 10},
		{64, 5, 0}, {7, 64, 0},
	} {
		g, err := roadGroup(c.gs, LayerShape{Name: "head", Out: c.out, In: 64})
		if c.want == 0 {
			if oe, ok := err.(*OptionError); !ok || oe.Key != "group_size" {
				t.Errorf("group_size %d, out %d: error %v, want one on group_size", c.gs, c.out, err)
			}
			continue
		}
		if err != nil || g != c.want {
			t.Errorf("group_size %d, out %d: %d, %v; want %d", c.gs, c.out, g, err, c.want)
		}
	}
}

// TestRoAdNonIdentityOptions runs the conformance checks on the random init.
func TestRoAdNonIdentityOptions(t *testing.T) {
	for _, v := range []string{"road_1", "road_2", "road_4"} {
		conformNonIdentity(t, "road", map[string]any{"variant": v, "init_weights": false})
	}
}

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		a := l.Adapter.(*RoAd)
		return map[string][]float32{"road_theta": slices.Clone(a.Theta.Data), "road_alpha": slices.Clone(a.Alpha.Data)}
	}
	addTorchCase(torchSpec{name: "road", method: "road", opts: map[string]any{"group_size": 8}, lr: 2e-2, clip: 0.01})
	addTorchCase(torchSpec{name: "road-2", method: "road", opts: map[string]any{"variant": "road_2", "group_size": 4, "init_weights": false}, lr: 2e-2, clip: 0.02, export: export})
	addTorchCase(torchSpec{name: "road-4", method: "road", opts: map[string]any{"variant": "road_4", "group_size": 8}, lr: 2e-2, clip: 0.02})
}
