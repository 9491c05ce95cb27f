package methods

import (
	"fmt"
	"slices"
	"testing"

	"peftbench/nn"
)

// missDelta is MiSS's ΔW (out×in) from the definition: balance, false and
// mini tile Dᵀ (out×r, D = [D_mini …] for mini) across the input axis,
// the last tile cut at in; bat is Bone's ΔW_ij = W_ij·B_i + B_i on r×r
// blocks, i the block row.
func missDelta(m *MiSS, l *nn.Linear) []float32 {
	r, out, in := m.Rank, l.Out, l.In
	d := make([]float32, out*in)
	if m.Form == "bat" {
		w := l.Weight.Data
		for i := range out / r {
			bi := m.D.Data[i*r*r : (i+1)*r*r] // B_i, r×r
			for j := range in / r {
				for a := range r {
					for c := range r {
						v := bi[a*r+c] // + B_i
						for b := range r {
							v += w[(i*r+a)*in+j*r+b] * bi[b*r+c] // W_ij·B_i
						}
						d[(i*r+a)*in+j*r+c] = v
					}
				}
			}
		}
		return d
	}
	dt := make([]float32, out*r) // Dᵀ, out×r
	for p := range r {
		for o := range out {
			if m.Form == "mini" {
				dt[o*r+p] = m.D.Data[p*m.MiniR+o%m.MiniR]
			} else {
				dt[o*r+p] = m.D.Data[p*out+o]
			}
		}
	}
	for k := 0; k < in; k += r { // [Dᵀ Dᵀ … Dᵀ]
		for o := range out {
			copy(d[o*in+k:o*in+min(k+r, in)], dt[o*r:o*r+r])
		}
	}
	return d
}

// TestMiSSShardStructure: after training, the merged update of every form
// is its defining ΔW, and the adapter's forward is x·(W0 + ΔW)ᵀ + b. The
// ranks leave a partial last shard (784 = 78·10 + 4, 256 = 25·10 + 6).
func TestMiSSShardStructure(t *testing.T) {
	for _, c := range []map[string]any{
		{"rank": 10},
		{"rank": 10, "init_weights": "false"},
		{"rank": 6, "init_weights": "mini", "mini_r": 4},
		{"rank": 16, "init_weights": "bat"},
		{"rank": 4, "init_weights": "bat"},
	} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			m := refModels(1)[0]
			att := attachRef(t, m, "miss", c)
			train(t, m, att, 3, 1e-2)
			x := nn.New(5, m.targets[0].In)
			nn.NewRNG(4, "x").FillNormal(x, 0, 1)
			for _, l := range m.targets {
				a := l.Adapter.(*MiSS)
				if maxAbs(a.D.Data) == 0 {
					t.Fatalf("%s: miss_block did not train", l.Name)
				}
				want := missDelta(a, l)
				got := sub(l.Merged(), l.Weight.Data)
				if e := maxAbs(sub(got, want)); e > 1e-5*max(1, maxAbs(want)) {
					t.Errorf("%s: merged ΔW off the definition by %g", l.Name, e)
				}
				// forward = x·(W0 + ΔW)ᵀ + b
				g := &nn.Graph{NoGrad: true}
				in := x
				if l.In != x.Cols() {
					in = nn.New(5, l.In)
					nn.NewRNG(5, "x").FillNormal(in, 0, 1)
				}
				y := slices.Clone(l.Forward(g, in).Data)
				w := slices.Clone(l.Weight.Data)
				for i := range w {
					w[i] += want[i]
				}
				ref := g.Linear(in, nn.FromData(w, l.Out, l.In), l.Bias).Data
				if e := maxAbs(sub(y, ref)); e > 1e-5*max(1, maxAbs(ref)) {
					t.Errorf("%s: forward off x·(W0 + ΔW)ᵀ + b by %g", l.Name, e)
				}
			}
		})
	}
}

// TestMiSSCheckLayers: bat needs r | in and r | out, mini needs
// mini_r | out, balance takes any r (the last shard is padded).
func TestMiSSCheckLayers(t *testing.T) {
	layers := []LayerShape{{Name: "fc1", Out: 48, In: 24}, {Name: "fc2", Out: 40, In: 48}}
	for _, c := range []struct {
		opts map[string]any
		key  string // "" when the layers fit
	}{
		{map[string]any{"rank": 64}, ""},
		{map[string]any{"rank": 8, "init_weights": "bat"}, ""},
		{map[string]any{"rank": 16, "init_weights": "bat"}, "rank"},
		{map[string]any{"rank": 16, "init_weights": "mini", "mini_r": 8}, ""},
		{map[string]any{"rank": 16, "init_weights": "mini", "mini_r": 16}, "mini_r"},
	} {
		o, err := ResolveOptions("miss", 0, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckLayers("miss", o, layers)
		oe, _ := err.(*OptionError)
		switch {
		case c.key == "" && err != nil:
			t.Errorf("%v: %v", c.opts, err)
		case c.key != "" && (oe == nil || oe.Key != c.key):
			t.Errorf("%v: error %v, want one about %s", c.opts, err, c.key)
		}
	}
}

func missExport(l *nn.Linear) map[string][]float32 {
	return map[string][]float32{"miss_block": slices.Clone(l.Adapter.(*MiSS).D.Data)}
}

func init() {
	addTorchCase(torchSpec{name: "miss", method: "miss", opts: map[string]any{"rank": 10}, lr: 1e-2, clip: 0.05})
	addTorchCase(torchSpec{name: "miss-false", method: "miss", opts: map[string]any{"rank": 8, "init_weights": "false"},
		lr: 1e-2, clip: 0.05, export: missExport})
	addTorchCase(torchSpec{name: "miss-mini", method: "miss", opts: map[string]any{"rank": 8, "init_weights": "mini", "mini_r": 4}, lr: 1e-2, clip: 0.05})
	addTorchCase(torchSpec{name: "miss-bat", method: "miss", opts: map[string]any{"rank": 8, "init_weights": "bat"}, lr: 1e-2, clip: 0.05})
}

// TestMiSSDropoutOnlyWhileTraining: miss_dropout makes the adapter path
// random under SetTraining(rng) only (bat applies none, as in HF).
func TestMiSSDropoutOnlyWhileTraining(t *testing.T) {
	inputDropoutActsOnlyInTraining(t, "miss", map[string]any{"rank": 16, "miss_dropout": 0.5}, true)
	inputDropoutActsOnlyInTraining(t, "miss", map[string]any{"rank": 16, "miss_dropout": 0.5, "init_weights": "bat"}, false)
}

// inputDropoutActsOnlyInTraining trains method a little, then checks that
// SetTraining(rng) makes the outputs random (or, with random false, leaves
// them alone) and SetTraining(nil) restores the evaluation outputs.
func inputDropoutActsOnlyInTraining(t *testing.T, method string, opts map[string]any, random bool) {
	t.Helper()
	m := refModels(1)[0]
	att := attachRef(t, m, method, opts)
	train(t, m, att, 3, 1e-2)
	evalOut := eval(m.out)
	att.SetTraining(nn.NewRNG(1, "dropout"))
	tr1, tr2 := eval(m.out), eval(m.out)
	att.SetTraining(nil)
	if got := relDiff(tr1, evalOut) != 0 && relDiff(tr1, tr2) != 0; got != random {
		t.Errorf("%s %v: dropout on: outputs random %v, want %v", method, opts, got, random)
	}
	if d := relDiff(eval(m.out), evalOut); d != 0 {
		t.Errorf("%s %v: dropout off: outputs moved by %g", method, opts, d)
	}
}
