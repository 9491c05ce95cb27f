package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	// The cross-check's trainer never calls SetTraining; the export switches
	// CoTo's draws on (once, before the first step) so that its 20 steps run
	// the stochastic schedule, and hands the Python side the uniforms of the
	// same stream (SetTraining draws from rng.Child("coto")).
	const seed, purpose = 11, "coto-check"
	export := func(l *nn.Linear) map[string][]float32 {
		c := l.Adapter.(*CoTo)
		if c.at.rng == nil {
			c.at.SetTraining(nn.NewRNG(seed, purpose))
		}
		twin := nn.NewRNG(seed, purpose).Child("coto")
		u := make([]float32, 4000)
		for i := range u {
			u[i] = twin.Float32()
		}
		return map[string][]float32{"lora_A": slices.Clone(c.A.Data), "coto_u": u}
	}
	addTorchCase(torchSpec{name: "coto", method: "coto",
		opts: map[string]any{"rank": 4, "alpha": 8, "initial_p": 0.3}, lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "coto-adapter", method: "coto",
		opts: map[string]any{"rank": 4, "alpha": 8, "initial_p": 0.2, "final_p": 0.9, "stage1_ratio": 0.5, "group": "adapter"},
		lr:   1e-2, clip: 0.05, export: export})
}

// TestCoToSchedule: p(t) rises linearly from initial_p at step 0 to
// final_p at ⌈stage1_ratio·T⌉ and stays there (the authors' callback).
func TestCoToSchedule(t *testing.T) {
	for _, c := range []struct {
		t, total     int
		p0, p1, frac float64
		want         float64
	}{
		{0, 100, 0.1, 1, 0.75, 0.1},
		{25, 100, 0.1, 1, 0.75, 0.1 + 0.9*25/75.0},
		{75, 100, 0.1, 1, 0.75, 1},
		{99, 100, 0.1, 1, 0.75, 1},
		{5, 10, 0.2, 0.9, 0.5, 0.9},
		{2, 10, 0.2, 0.9, 0.5, 0.2 + 0.7*2/5.0},
		{1, 6, 0.1, 1, 0.75, 0.1 + 0.9/5}, // ⌈4.5⌉ = 5
	} {
		if got := cotoProb(c.t, c.total, c.p0, c.p1, c.frac); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("p(%d of %d; %g→%g over %g) = %.6g, want %.6g", c.t, c.total, c.p0, c.p1, c.frac, got, c.want)
		}
	}
}

// TestCoToGroups: on the reference transformer (two blocks and the LM
// head, every linear targeted) the adapters of one block are switched
// together and the groups independently, each on with probability p —
// conditioned on one being on: P(on) = p/(1 − (1−p)ⁿ) for n groups; a switched-off layer
// gives its base output exactly and a switched-on one LoRA's output,
// unscaled; evaluation switches every adapter on. group = "adapter" draws
// every adapter alone. Planted bugs this catches: keeping u ≤ p off
// (P(on) becomes 1 − p) and grouping per adapter by default.
func TestCoToGroups(t *testing.T) {
	for _, group := range []string{"layer", "adapter"} {
		t.Run(group, func(t *testing.T) {
			m := refModels(1)[1]
			att := attachRef(t, m, "coto", map[string]any{"rank": 4, "init": "gaussian", "group": group})
			ct := att.(*cotoAttachment)
			// B = 0 at init: give it values so that on and off differ.
			rng := nn.NewRNG(2, "b")
			for _, l := range m.targets {
				rng.FillNormal(l.Adapter.(*CoTo).B, 0, 0.1)
			}
			wantGroups := len(m.targets)
			if group == "layer" {
				wantGroups = nn.RefTransformerConfig.Blocks + 1 // the LM head alone
			}
			if ct.groups != wantGroups {
				t.Fatalf("%d groups, want %d", ct.groups, wantGroups)
			}
			xs := map[int]*nn.Tensor{}
			for _, l := range m.targets {
				if xs[l.In] == nil {
					xs[l.In] = nn.New(3, l.In)
					nn.NewRNG(3, "x").FillNormal(xs[l.In], 0, 1)
				}
			}
			ct.P = 0.3
			att.SetTraining(nn.NewRNG(4, "dropout"))
			const steps = 400
			on := make([]int, len(m.targets))
			for range steps {
				ct.stale = true
				for i, l := range m.targets {
					c, x := l.Adapter.(*CoTo), xs[l.In]
					y := eval(func(g *nn.Graph) *nn.Tensor { return l.Forward(g, x) })
					base := eval(func(g *nn.Graph) *nn.Tensor { return l.Base(g, x) })
					full := eval(func(g *nn.Graph) *nn.Tensor { return c.LoRA.Forward(g, l, x) })
					if ct.Off[c.group] {
						if d := relDiff(y, base); d != 0 {
							t.Fatalf("%s switched off: output %.3g from the base", l.Name, d)
						}
						continue
					}
					on[i]++
					if d := relDiff(y, full); d != 0 {
						t.Fatalf("%s switched on: output %.3g from LoRA's", l.Name, d)
					}
				}
				if !slices.Contains(ct.Off, false) {
					t.Fatal("every group switched off")
				}
				// adapters of one group agree
				for i, l := range m.targets {
					for j := range i {
						if m.targets[j].Adapter.(*CoTo).group == l.Adapter.(*CoTo).group && ct.Off[l.Adapter.(*CoTo).group] != ct.Off[m.targets[j].Adapter.(*CoTo).group] {
							t.Fatal("one group's adapters disagree")
						}
					}
				}
			}
			n := float64(ct.groups)
			want := 0.3 / (1 - math.Pow(0.7, n))
			for i, k := range on {
				if f := float64(k) / steps; math.Abs(f-want) > 4*math.Sqrt(want*(1-want)/steps) {
					t.Errorf("%s on in %.3f of the steps, want %.3f", m.targets[i].Name, f, want)
				}
			}
			att.SetTraining(nil)
			for _, l := range m.targets {
				x := xs[l.In]
				y := eval(func(g *nn.Graph) *nn.Tensor { return l.Forward(g, x) })
				full := eval(func(g *nn.Graph) *nn.Tensor { return l.Adapter.(*CoTo).LoRA.Forward(g, l, x) })
				if d := relDiff(y, full); d != 0 {
					t.Errorf("evaluation: %s output %.3g from LoRA's", l.Name, d)
				}
			}
		})
	}
}

// TestCoToTraining: through the trainer's hooks, P follows the schedule
// step by step, early steps switch groups off and late ones none, a
// switched-off adapter is left alone by the optimiser (weight decay
// included) while a switched-on one moves, and the layer-group names are
// the prefixes up to the block index.
func TestCoToTraining(t *testing.T) {
	m := refModels(1)[1]
	att := attachRef(t, m, "coto", nil)
	ct := att.(*cotoAttachment)
	att.SetTraining(nn.NewRNG(1, "dropout"))
	tr := newTrainer(t, att, m.loss)
	tr.opt.WeightDecay = 0.1
	const total = 8
	offEarly, offLate := 0, 0
	for s := range total {
		if want := cotoProb(s, total, 0.1, 1, 0.75); ct.P != want {
			t.Fatalf("step %d: P = %g, want %g", s, ct.P, want)
		}
		before := map[*nn.Tensor][]float32{}
		for _, l := range m.targets {
			c := l.Adapter.(*CoTo)
			before[c.A] = slices.Clone(c.A.Data)
		}
		tr.step(s, total, 1e-3)
		// a switched-off adapter is not stepped: not even weight decay
		// moves its A; a switched-on one moves.
		for _, l := range m.targets {
			c := l.Adapter.(*CoTo)
			if moved := !slices.Equal(before[c.A], c.A.Data); moved == ct.Off[c.group] {
				t.Fatalf("step %d: %s switched off %v, A moved %v", s, l.Name, ct.Off[c.group], moved)
			}
		}
		for _, o := range ct.Off {
			if o && s < 3 {
				offEarly++
			}
			if o && s >= 6 {
				offLate++
			}
		}
	}
	if offEarly == 0 || offLate != 0 {
		t.Errorf("groups off: %d in steps 0-2 (want some), %d in steps 6-7 (want none at p = 1)", offEarly, offLate)
	}
	for name, want := range map[string]string{
		"blocks.1.attn.q": "blocks.1", "model.layers.12.mlp.up_proj": "model.layers.12",
		"transformer.h.0.attn.c_attn": "transformer.h.0", "fc1": "fc1",
	} {
		if got := layerGroup(name); got != want {
			t.Errorf("layerGroup(%q) = %q, want %q", name, got, want)
		}
	}
}
