package methods

import (
	"fmt"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		c := l.Adapter.(*CoLA)
		m := map[string][]float32{}
		for j, a := range c.Links {
			m[fmt.Sprintf("A%d", j)] = slices.Clone(a)
		}
		return m
	}
	addTorchCase(torchSpec{name: "cola", method: "cola", opts: map[string]any{"rank": 4, "alpha": 8},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "cola-gaussian", method: "cola", opts: map[string]any{"rank": 2, "alpha": 4, "cola_chain": 4, "init": "gaussian"},
		lr: 1e-2, clip: 0.05, export: export})
}

// TestCoLAKnots: with cola_chain J over T steps, CoLA ties its knots after
// steps ⌊j·T/J + ½⌋ − 1 (j < J) and only then: right after a knot the
// optimiser state is empty, the new module is (A_{j+1}, 0), the merged
// weight is unchanged (the module moved into the chain's weight), the
// chain's weight is W0 + Σ s·B_i·A_i of the modules merged so far, and W0
// itself never changes.
func TestCoLAKnots(t *testing.T) {
	for _, c := range []struct{ chain, steps int }{{3, 9}, {4, 10}} {
		t.Run(fmt.Sprintf("J=%d,T=%d", c.chain, c.steps), func(t *testing.T) {
			m := refModels(1)[0]
			att := attachRef(t, m, "cola", map[string]any{"rank": 2, "alpha": 4, "cola_chain": c.chain})
			at := att.(*colaAttachment)
			w0 := [][]float32{}
			sums := [][]float64{}
			for _, l := range m.targets {
				w0 = append(w0, slices.Clone(l.Weight.Data))
				sums = append(sums, make([]float64, l.Out*l.In))
			}
			want := map[int]bool{}
			for j := 1; j < c.chain; j++ {
				want[(2*j*c.steps+c.chain)/(2*c.chain)-1] = true
			}
			tr := newTrainer(t, att, m.loss)
			for s := range c.steps {
				before := make([][]float32, len(m.targets))
				tr.g.Reset()
				nn.ZeroGrads(tr.params)
				tr.g.Backward(tr.loss(tr.g))
				nn.ClipGradNorm(tr.params, 1)
				tr.stepper.Step(tr.params, 1e-2)
				for i, l := range m.targets {
					before[i] = l.Merged()
					a := l.Adapter.(*CoLA)
					addLowRank64(sums[i], a.B.Data, a.A.Data, l.Out, a.Rank, l.In, float64(a.Scale))
				}
				knots := len(at.Knots)
				at.AfterStep(s, c.steps)
				knotted := len(at.Knots) > knots
				if knotted != want[s] {
					t.Fatalf("step %d: knot %v, want %v (knots at %v)", s, knotted, want[s], want)
				}
				state := tr.opt.StateBytes()
				if knotted && state != 0 {
					t.Errorf("step %d: optimiser holds %d bytes right after the knot, want 0", s, state)
				}
				if !knotted && state == 0 {
					t.Errorf("step %d: optimiser state empty without a knot", s)
				}
				for i, l := range m.targets {
					a := l.Adapter.(*CoLA)
					if d := relDiff(l.Merged(), before[i]); d > 1e-6 {
						t.Errorf("step %d %s: merged weight moved by %.3g at the knot", s, l.Name, d)
					}
					if !slices.Equal(l.Weight.Data, w0[i]) {
						t.Fatalf("step %d %s: W0 changed", s, l.Name)
					}
					if !knotted {
						// undo this step's module: sums hold merged modules only
						addLowRank64(sums[i], a.B.Data, a.A.Data, l.Out, a.Rank, l.In, -float64(a.Scale))
						continue
					}
					if maxAbs(a.B.Data) != 0 || !slices.Equal(a.A.Data, a.Links[a.Link]) || a.Link != len(at.Knots) {
						t.Errorf("step %d %s: the new module is not (A_%d, 0)", s, l.Name, len(at.Knots))
					}
					wc := make([]float32, len(w0[i]))
					for k, v := range w0[i] {
						wc[k] = float32(float64(v) + sums[i][k])
					}
					if d := relDiff(a.Wc.Data, wc); d > 1e-6 {
						t.Errorf("step %d %s: chain weight off W0 + Σ s·B_j·A_j by %.3g", s, l.Name, d)
					}
				}
			}
		})
	}
}

// addLowRank64 adds s·B·A to w (out×in) in float64.
func addLowRank64(w []float64, b, a []float32, out, r, in int, s float64) {
	for i := range out {
		for p := range r {
			bv := float64(b[i*r+p])
			for j := range in {
				w[i*in+j] += s * bv * float64(a[p*in+j])
			}
		}
	}
}
