package methods

import (
	"math"
	"slices"
	"strings"
	"testing"

	"peftbench/nn"
)

// TestIA3Placement checks IA3's defining properties on the reference
// transformer: feedforward_modules picks the input form for the layers it
// matches and the output form for the rest; only the vectors train (W0
// and b do not move); after training, each layer's outputs are l ⊙ (W0x + b)
// or W0(l ⊙ x) + b for random x; and the merged weight and bias fold l in
// exactly (diag(l)·W0 and l ⊙ b, or W0·diag(l) and b).
func TestIA3Placement(t *testing.T) {
	for _, c := range []struct {
		ff   string
		want func(name string) bool // the layers in input form
	}{
		{"mlp.down", func(n string) bool { return strings.HasSuffix(n, ".mlp.down") }},
		{"", func(string) bool { return false }},
		{"up, blocks.*.attn.v", func(n string) bool { return strings.HasSuffix(n, ".mlp.up") || strings.HasSuffix(n, ".attn.v") }},
		{"re:attn\\.[qk]$,head", func(n string) bool {
			return strings.HasSuffix(n, ".attn.q") || strings.HasSuffix(n, ".attn.k") || n == "head"
		}},
	} {
		t.Run(c.ff, func(t *testing.T) {
			m := refModels(1)[1]
			att := attachRef(t, m, "ia3", map[string]any{"feedforward_modules": c.ff})
			var frozen [][]float32
			for _, l := range m.targets {
				frozen = append(frozen, slices.Concat(l.Weight.Data, ia3Bias(l)))
			}
			ps := att.Params()
			if len(ps) != len(m.targets) {
				t.Fatalf("%d trainable tensors for %d layers", len(ps), len(m.targets))
			}
			train(t, m, att, 5, 5e-2)
			rng := nn.NewRNG(5, "x")
			for i, l := range m.targets {
				a := l.Adapter.(*IA3)
				ff := c.want(l.Name)
				if a.Feedforward != ff {
					t.Errorf("%s: feedforward %v, want %v", l.Name, a.Feedforward, ff)
				}
				n := l.Out
				if ff {
					n = l.In
				}
				if ps[i].T != a.L || len(a.L.Data) != n {
					t.Errorf("%s: trainable %s has %d elements, want l of %d", l.Name, ps[i].Name, ps[i].T.Size(), n)
				}
				if !slices.Equal(frozen[i], slices.Concat(l.Weight.Data, ia3Bias(l))) || l.Weight.Grad != nil {
					t.Errorf("%s: W0 or b changed or trains", l.Name)
				}
				if d := maxAbs(sub(a.L.Data, ia3Ones(n))); d < 1e-3 {
					t.Errorf("%s: l moved only %.3g from 1", l.Name, d)
				}
				// outputs against the formula, in float64
				x := nn.New(3, l.In)
				rng.FillNormal(x, 0, 1)
				y := a.Forward(&nn.Graph{NoGrad: true}, l, x).Data
				w, b := l.Merged(), MergedBias(l)
				var dy, dm float64
				for r := range 3 {
					for o := range l.Out {
						var s, sm float64
						for j := range l.In {
							xj := float64(x.Data[r*l.In+j])
							if ff {
								s += float64(l.Weight.Data[o*l.In+j]) * float64(a.L.Data[j]) * xj
							} else {
								s += float64(l.Weight.Data[o*l.In+j]) * xj
							}
							sm += float64(w[o*l.In+j]) * xj
						}
						if l.Bias != nil {
							s += float64(l.Bias.Data[o])
							sm += float64(b[o])
						}
						if !ff {
							s *= float64(a.L.Data[o])
						}
						dy = max(dy, math.Abs(float64(y[r*l.Out+o])-s))
						dm = max(dm, math.Abs(sm-s))
					}
				}
				if dy > 1e-5 || dm > 1e-5 {
					t.Errorf("%s (feedforward %v): forward off the formula by %.3g, merged by %.3g", l.Name, ff, dy, dm)
				}
			}
		})
	}
}

// TestIA3BiasMerge: the output form scales the bias, the input form
// leaves it, on the MLP (whose layers have biases).
func TestIA3BiasMerge(t *testing.T) {
	m := refModels(1)[0]
	att := attachRef(t, m, "ia3", map[string]any{"feedforward_modules": "fc2"})
	train(t, m, att, 5, 5e-2)
	if d := mergeGap(m); d > 1e-6 {
		t.Errorf("merged model outputs %.3g away from the adapter's", d)
	}
	fc1, fc2 := m.targets[0], m.targets[1]
	l1 := fc1.Adapter.(*IA3).L.Data
	for i, v := range MergedBias(fc1) {
		if v != fc1.Bias.Data[i]*l1[i] {
			t.Fatalf("fc1 (output form): merged bias[%d] = %g, want l⊙b = %g", i, v, fc1.Bias.Data[i]*l1[i])
		}
	}
	if !slices.Equal(MergedBias(fc2), fc2.Bias.Data) {
		t.Errorf("fc2 (feedforward): merged bias changed")
	}
}

// TestIA3Options: a bad pattern is an error on feedforward_modules; the
// count follows the placement.
func TestIA3Options(t *testing.T) {
	layers := []LayerShape{{Name: "blocks.0.mlp.up", Out: 256, In: 64}, {Name: "blocks.0.mlp.down", Out: 64, In: 256}}
	for _, c := range []struct {
		ff   string
		want int64 // -1: error
	}{{"mlp.down", 256 + 256}, {"", 256 + 64}, {"up,down", 64 + 256}, {"re:(", -1}, {"a,,b", -1}} {
		o, err := ResolveOptions("ia3", 0, map[string]any{"feedforward_modules": c.ff})
		if err != nil {
			t.Fatal(err)
		}
		err = CheckLayers("ia3", o, layers)
		if c.want < 0 {
			if oe, ok := err.(*OptionError); !ok || oe.Key != "feedforward_modules" {
				t.Errorf("%q: error %v, want one on feedforward_modules", c.ff, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.ff, err)
		}
		if n, _ := TrainableParamsResolved("ia3", layers, o); n != c.want {
			t.Errorf("%q: %d trainable, want %d", c.ff, n, c.want)
		}
	}
}

// TestIA3NonIdentityOptions runs the conformance checks on l ~ N(0, 1).
func TestIA3NonIdentityOptions(t *testing.T) {
	conformNonIdentity(t, "ia3", map[string]any{"init_ia3_weights": false})
}

func ia3Bias(l *nn.Linear) []float32 {
	if l.Bias == nil {
		return nil
	}
	return l.Bias.Data
}

func ia3Ones(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

func init() {
	addTorchCase(torchSpec{name: "ia3", method: "ia3", opts: map[string]any{"feedforward_modules": "fc2"}, lr: 5e-2, clip: 0.01})
	addTorchCase(torchSpec{name: "ia3-random", method: "ia3", opts: map[string]any{"feedforward_modules": "fc1", "init_ia3_weights": false}, lr: 5e-2, clip: 0.01,
		export: func(l *nn.Linear) map[string][]float32 {
			return map[string][]float32{"ia3_l": slices.Clone(l.Adapter.(*IA3).L.Data)}
		}})
}
