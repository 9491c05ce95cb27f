package methods

import (
	"fmt"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	const gamma, every, steps = 1, 5, 20 // TestTorchCrossCheck's 20 steps
	// The draw is a function of the seed LISA takes from its stream at
	// Attach: attaching to stand-ins named like the cross-check's targets
	// (fc1, fc2) from the same stream, nn.NewRNG(11, "method"), gives the
	// schedule the trained attachment follows.
	export := func(l *nn.Linear) map[string][]float32 {
		ls := []*nn.Linear{nn.NewLinear("fc1", 1, 1, true, nn.NewRNG(1, "x")), nn.NewLinear("fc2", 1, 1, true, nn.NewRNG(1, "x"))}
		att, err := Attach("lisa", ls, map[string]any{"lisa_activated_layers": gamma, "lisa_interval_steps": every}, nn.NewRNG(11, "method"))
		if err != nil {
			panic(err)
		}
		at := att.(*lisa)
		g := slices.Index(at.names, l.Name)
		var flags []float32
		for k := range steps/every + 1 {
			f := float32(0)
			if at.ActiveAt(k)[g] {
				f = 1
			}
			flags = append(flags, f)
		}
		return map[string][]float32{"active": flags}
	}
	addTorchCase(torchSpec{name: "lisa", method: "lisa", opts: map[string]any{"lisa_activated_layers": gamma, "lisa_interval_steps": every},
		lr: 1e-2, clip: 0.05, export: export})
}

// TestLISASamplesLayers: on a 4-block transformer, LISA trains exactly γ
// blocks (all linears of each) plus the head in every step; the set is
// drawn at steps 0, K, 2K, … and held in between; frozen blocks get no
// gradient and do not move (no weight decay either); between steps every
// parameter has its gradient buffer; over the run every block trains.
func TestLISASamplesLayers(t *testing.T) {
	for _, c := range []struct{ gamma, every int }{{1, 3}, {2, 2}} {
		t.Run(fmt.Sprintf("γ=%d,K=%d", c.gamma, c.every), func(t *testing.T) {
			tf := nn.NewTransformer(nn.TransformerConfig{Vocab: 16, Dim: 8, Heads: 2, Blocks: 4, Seq: 8}, nn.NewRNG(1, "init"))
			ids := []int{1, 2, 3, 4, 5, 6, 7, 8}
			next := []int{2, 3, 4, 5, 6, 7, 8, -1}
			loss := func(g *nn.Graph) *nn.Tensor { return g.CrossEntropy(tf.Forward(g, ids, 1, 8), next) }
			att, err := Attach("lisa", tf.Linears(), map[string]any{"lisa_activated_layers": c.gamma, "lisa_interval_steps": c.every}, nn.NewRNG(3, "method"))
			if err != nil {
				t.Fatal(err)
			}
			at := att.(*lisa)
			names, members := at.Groups()
			if !slices.Equal(names, []string{"blocks.0", "blocks.1", "blocks.2", "blocks.3"}) || len(at.always) != 1 || at.layers[at.always[0]].Name != "head" {
				t.Fatalf("layers %v, always-on %v: want four blocks and the head", names, at.always)
			}
			tr := newTrainer(t, att, loss)
			tr.opt.WeightDecay = 0.1
			steps := 20 * c.every
			var prev []bool
			trained := make([]bool, len(names))
			for s := range steps {
				before := make([][]float32, len(at.layers))
				for i, l := range at.layers {
					before[i] = slices.Clone(l.Weight.Data)
				}
				at.StartStep(s, steps)
				act := make([]bool, len(names))
				n := 0
				for gi, ls := range members {
					act[gi] = ls[0].Weight.Grad != nil
					for _, l := range ls {
						if (l.Weight.Grad != nil) != act[gi] || (l.Bias.Grad != nil) != act[gi] {
							t.Fatalf("step %d: block %s partly frozen", s, names[gi])
						}
					}
					if act[gi] {
						n++
						trained[gi] = true
					}
				}
				if n != c.gamma {
					t.Fatalf("step %d: %d blocks train, want γ = %d", s, n, c.gamma)
				}
				if s%c.every != 0 && !slices.Equal(act, prev) {
					t.Errorf("step %d: the trained blocks changed inside an interval (%v → %v)", s, prev, act)
				}
				prev = act
				tr.g.Reset()
				nn.ZeroGrads(tr.params)
				tr.g.Backward(tr.loss(tr.g))
				tr.stepper.Step(tr.params, 1e-2)
				at.AfterStep(s, steps)
				for i, l := range at.layers {
					moved := !slices.Equal(l.Weight.Data, before[i])
					on := true
					for gi, ls := range members {
						if slices.Contains(ls, l) {
							on = act[gi]
						}
					}
					if moved != on {
						t.Errorf("step %d: %s moved %v, trains %v", s, l.Name, moved, on)
					}
				}
				for _, p := range tr.params {
					if p.T.Grad == nil {
						t.Fatalf("step %d: %s has no gradient buffer between steps", s, p.Name)
					}
				}
			}
			for gi, ok := range trained {
				if !ok {
					t.Errorf("block %s never trained in %d steps", names[gi], steps)
				}
			}
		})
	}
}
