package methods

import (
	"math"
	"slices"
	"strings"
	"testing"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		return map[string][]float32{"melora_A": slices.Clone(l.Adapter.(*MELoRA).A.Data)}
	}
	addTorchCase(torchSpec{name: "melora", method: "melora", opts: map[string]any{"rank": 4, "alpha": 8},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "melora-g4", method: "melora", opts: map[string]any{"rank": 8, "alpha": 4, "n_split": 4},
		lr: 1e-2, clip: 0.05, export: export})
}

// TestMELoRABlockDiagonal is MELoRA's defining property: after training,
// ΔW (merged − W0) is zero off the g diagonal blocks and is s·B_i·A_i on
// block i with s = α/(r/g), computed here in float64; its rank exceeds
// r/g (each mini LoRA's) and reaches r, where a LoRA with MELoRA's
// parameter count has rank r/g.
func TestMELoRABlockDiagonal(t *testing.T) {
	for _, c := range []struct{ r, g int }{{4, 2}, {8, 4}, {6, 1}} {
		m := refModels(1)[0]
		const alpha = 8.0
		att := attachRef(t, m, "melora", map[string]any{"rank": c.r, "alpha": alpha, "n_split": c.g})
		train(t, m, att, 6, 1e-2)
		s := alpha / float64(c.r/c.g)
		rb := c.r / c.g
		for _, l := range m.targets {
			a := l.Adapter.(*MELoRA)
			ib, ob := l.In/c.g, l.Out/c.g
			got := deltaOf(l)
			var worst, scale float64
			for o := range l.Out {
				for j := range l.In {
					var want float64
					if bi := o / ob; j/ib == bi {
						for p := range rb {
							want += float64(a.B.Data[o*rb+p]) * float64(a.A.Data[(bi*rb+p)*ib+j%ib])
						}
						want *= s
					}
					worst = max(worst, math.Abs(float64(got[o*l.In+j])-want))
					scale = max(scale, math.Abs(want))
				}
			}
			if scale == 0 || worst > 1e-4*scale {
				t.Errorf("r=%d g=%d %s: ΔW off blockdiag(s·B_i·A_i) by %.3g (max %.3g)", c.r, c.g, l.Name, worst, scale)
			}
			if rk := hadamardRank(got, l.Out, l.In); rk != c.r {
				t.Errorf("r=%d g=%d %s: rank(ΔW) = %d, want r = %d", c.r, c.g, l.Name, rk, c.r)
			}
		}
	}
}

// TestMELoRARefuses: n_split must divide the rank and every layer's in and
// out features; the error names the option and the layer.
func TestMELoRARefuses(t *testing.T) {
	layers := []LayerShape{{Name: "fc1", Out: 12, In: 16}, {Name: "head", Out: 10, In: 12}}
	for _, c := range []struct {
		opts map[string]any
		want []string
	}{
		{map[string]any{"rank": 4, "n_split": 4}, []string{"n_split", "head", "10×12"}},
		{map[string]any{"rank": 6, "n_split": 4}, []string{"n_split", "does not divide the rank 6"}},
		{map[string]any{"rank": 12, "n_split": 2}, []string{"rank", "exceeds", "head"}},
	} {
		o, err := ResolveOptions("melora", 0, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckLayers("melora", o, layers)
		if err == nil {
			t.Errorf("%v: accepted", c.opts)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not name %q", c.opts, err, w)
			}
		}
	}
	o, _ := ResolveOptions("melora", 0, map[string]any{"rank": 4, "n_split": 2})
	if err := CheckLayers("melora", o, layers); err != nil {
		t.Errorf("rank 4, n_split 2: %v", err)
	}
	l := nn.NewLinear("head", 10, 12, true, nn.NewRNG(1, "init"))
	if _, err := Attach("melora", []*nn.Linear{l}, map[string]any{"rank": 4, "n_split": 4}, nn.NewRNG(1, "method")); err == nil || l.Adapter != nil {
		t.Errorf("Attach accepted n_split 4 on a 10×12 layer (err %v)", err)
	}
}
