package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		return map[string][]float32{"lori_A": slices.Clone(l.Adapter.(*LoRI).A.Data)}
	}
	addTorchCase(torchSpec{name: "lori", method: "lori", opts: map[string]any{"rank": 4, "alpha": 8},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "lori-layer-keep", method: "lori", opts: map[string]any{"rank": 4, "alpha": 8,
		"sparsity": 0.7, "mask_scope": "layer", "reset_b": false, "dense_fraction": 0.3, "init_a": "gaussian"},
		lr: 1e-2, clip: 0.05, export: export})
}

// TestLoRIMask is LoRI's defining property: after the mask step B keeps
// its mask — every masked entry is exactly 0 at every later step, the
// unmasked ones keep training — and the mask keeps the top (1−s) of |B|:
// ⌊(1−s)·N⌋ entries over all layers (global) or per layer, the entries of
// largest dense |B|. Both reset_b settings, AdamW and SGD with momentum
// (whose state from the dense stage would move masked entries unless
// restarted).
func TestLoRIMask(t *testing.T) {
	const steps = 8 // dense_fraction 0.5: the mask step is step 3
	for _, c := range []struct {
		scope  string
		resetB bool
		sgd    bool
	}{{"global", true, false}, {"layer", false, false}, {"global", false, true}} {
		m := refModels(1)[0]
		att := attachRef(t, m, "lori", map[string]any{"rank": 4, "sparsity": 0.9, "mask_scope": c.scope, "reset_b": c.resetB})
		la := att.(*loriAttachment)
		var opt nn.Optimizer = nn.NewAdamW()
		if c.sgd {
			opt = &nn.SGD{Momentum: 0.9, WeightDecay: 0.01}
		}
		opt, err := la.Optimizer(opt)
		if err != nil {
			t.Fatal(err)
		}
		params := att.Params()
		g := nn.NewGraph()
		var dense [][]float32
		for s := range steps {
			g.Reset()
			nn.ZeroGrads(params)
			g.Backward(m.loss(g))
			nn.ClipGradNorm(params, 1)
			opt.Step(params, 1e-2)
			if s == 3 {
				for _, l := range m.targets {
					dense = append(dense, slices.Clone(l.Adapter.(*LoRI).B.Data))
				}
			}
			la.AfterStep(s, steps)
			if s < 3 {
				if la.MaskStep >= 0 {
					t.Fatalf("mask applied at step %d, want 3", la.MaskStep)
				}
				continue
			}
			for li, l := range m.targets {
				a := l.Adapter.(*LoRI)
				for i, v := range a.B.Data {
					if a.M.Data[i] == 0 && v != 0 {
						t.Fatalf("%+v step %d: %s B[%d] = %g under the mask", c, s, l.Name, i, v)
					}
					if s == 3 && a.M.Data[i] == 1 {
						if want := map[bool]float32{true: 0, false: dense[li][i]}[c.resetB]; v != want {
							t.Fatalf("%+v: %s B[%d] = %g right after the mask step, want %g", c, l.Name, i, v, want)
						}
					}
				}
			}
		}
		if la.MaskStep != 3 {
			t.Fatalf("%+v: mask step %d, want 3", c, la.MaskStep)
		}
		// the mask keeps the top ⌊0.1·N⌋ of the dense |B|, per scope.
		groups := [][]int{{0, 1}}
		if c.scope == "layer" {
			groups = [][]int{{0}, {1}}
		}
		for _, grp := range groups {
			var abs []float64
			kept, moved := 0, 0
			minKept, maxDropped := math.Inf(1), 0.0
			for _, li := range grp {
				a := m.targets[li].Adapter.(*LoRI)
				for i, v := range dense[li] {
					abs = append(abs, math.Abs(float64(v)))
					if a.M.Data[i] == 1 {
						kept++
						minKept = min(minKept, math.Abs(float64(v)))
						if a.B.Data[i] != 0 {
							moved++
						}
					} else {
						maxDropped = max(maxDropped, math.Abs(float64(v)))
					}
				}
			}
			if want := int(0.1 * float64(len(abs))); kept != want {
				t.Errorf("%+v: mask keeps %d of %d, want %d", c, kept, len(abs), want)
			}
			if maxDropped > minKept {
				t.Errorf("%+v: a dropped |B| %.4g exceeds a kept one %.4g", c, maxDropped, minKept)
			}
			if moved < kept/2 {
				t.Errorf("%+v: only %d of %d kept entries nonzero after training", c, moved, kept)
			}
		}
	}
}
