package methods

import (
	"math"
	"path"
	"slices"
	"strings"
	"testing"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		return map[string][]float32{"tied_lora_A": slices.Clone(l.Adapter.(*TiedLoRA).A.Data)}
	}
	// The cross-check MLP's fc1 and fc2 are two projection types (one layer
	// each); TestTiedLoRATying checks the tying on the transformer.
	addTorchCase(torchSpec{name: "tied-lora", method: "tied-lora", opts: map[string]any{"rank": 4},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "tied-lora-frozen-a", method: "tied-lora", opts: map[string]any{"rank": 4, "alpha": 16, "train_a": false},
		lr: 1e-2, clip: 0.05, export: export})
}

// TestTiedLoRATying: on the reference transformer (two blocks), the layers
// of one projection type (blocks.0.q and blocks.1.q, …) share one A and B
// and no others do; after training, every layer's ΔW (Merged − W0) is
// s·Λ_v·B·Λ_u·A with the shared A, B (which trained) and its own u, v
// (which differ between the tied layers).
func TestTiedLoRATying(t *testing.T) {
	const r, alpha = 4, 8.0
	m := refModels(1)[1]
	att := attachRef(t, m, "tied-lora", map[string]any{"rank": r, "alpha": alpha})
	a0 := map[*nn.Tensor][]float32{}
	for _, l := range m.targets {
		a := l.Adapter.(*TiedLoRA)
		a0[a.A] = slices.Clone(a.A.Data)
	}
	train(t, m, att, 4, 1e-2)
	pairs := 0
	for i, li := range m.targets {
		ai := li.Adapter.(*TiedLoRA)
		for _, lj := range m.targets[i+1:] {
			aj := lj.Adapter.(*TiedLoRA)
			same := strings.HasPrefix(li.Name, "blocks.") && path.Ext(li.Name) == path.Ext(lj.Name)
			if shared := ai.A == aj.A && ai.B == aj.B; shared != same {
				t.Errorf("%s and %s: share A, B = %v, want %v", li.Name, lj.Name, shared, same)
			}
			if same {
				pairs++
				if slices.Equal(ai.U.Data, aj.U.Data) || slices.Equal(ai.V.Data, aj.V.Data) {
					t.Errorf("%s and %s: u or v equal after training; want per-layer vectors", li.Name, lj.Name)
				}
			}
		}
		if slices.Equal(ai.A.Data, a0[ai.A]) || maxAbs(ai.B.Data) == 0 {
			t.Errorf("%s: the tied A or B did not train", li.Name)
		}
		got := deltaOf(li)
		var worst, scale float64
		for o := range li.Out {
			for j := range li.In {
				var acc float64
				for p := range r {
					acc += float64(ai.B.Data[o*r+p]) * float64(ai.U.Data[p]) * float64(ai.A.Data[p*li.In+j])
				}
				want := alpha / r * float64(ai.V.Data[o]) * acc
				worst = max(worst, math.Abs(float64(got[o*li.In+j])-want))
				scale = max(scale, math.Abs(want))
			}
		}
		if worst > 1e-4*scale {
			t.Errorf("%s: ΔW off s·Λ_v·B·Λ_u·A by %.3g (max %.3g)", li.Name, worst, scale)
		}
	}
	if pairs != 6 {
		t.Errorf("%d tied pairs, want 6 (q, k, v, o, up, down across two blocks)", pairs)
	}
}

// TestTiedLoRAProjectionType: the key ignores layer indices, keeps the
// module path (GPT-2's attn.c_proj and mlp.c_proj differ) and the shape.
func TestTiedLoRAProjectionType(t *testing.T) {
	key := func(name string, out, in int) string { return projectionType(LayerShape{Name: name, Out: out, In: in}) }
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"model.layers.0.self_attn.q_proj", "model.layers.11.self_attn.q_proj", true},
		{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", false},
		{"transformer.h.0.attn.c_proj", "transformer.h.3.mlp.c_proj", false},
		{"fc1", "fc2", false},
	} {
		if got := key(c.a, 32, 32) == key(c.b, 32, 32); got != c.same {
			t.Errorf("%s, %s: same type = %v, want %v", c.a, c.b, got, c.same)
		}
	}
	if key("blocks.0.q", 32, 32) == key("blocks.1.q", 16, 32) {
		t.Error("layers of one name and different shapes share a type")
	}
}
