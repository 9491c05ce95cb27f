package methods

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	// export hands the Python side A and the ranks the method's stream will
	// draw for the 20 steps (b for step 0, then one per AfterStep), read
	// from a copy of that stream. The cross-check's trainer, like the
	// conformance suite's, never calls SetTraining (package train calls it
	// every step), so export also switches the drawn ranks on: the
	// cross-check then trains what a trial trains.
	export := func(l *nn.Linear) map[string][]float32 {
		m := l.Adapter.(*DyLoRA)
		m.st.training = true
		rng := *m.st.rng
		cp := &dyloraState{rmin: m.st.rmin, rmax: m.st.rmax, rng: &rng}
		ranks := []float32{float32(m.st.b)}
		for len(ranks) < 40 {
			ranks = append(ranks, float32(cp.draw()))
		}
		return map[string][]float32{"lora_A": slices.Clone(m.A.Data), "ranks": ranks}
	}
	addTorchCase(torchSpec{name: "dylora", method: "dylora", opts: map[string]any{"rank": 4, "alpha": 8},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "dylora-full", method: "dylora", opts: map[string]any{"rank": 6, "alpha": 12, "r_min": 2, "frozen": false},
		lr: 1e-2, clip: 0.05, export: export})
}

// truncatedLoRA returns x·W0ᵀ + bias + (α/b)·(x·A[:b]ᵀ)·B[:, :b]ᵀ in
// float64, from the adapter's tensors alone: the truncated LoRA DyLoRA
// serves at rank b.
func truncatedLoRA(l *nn.Linear, a, bm []float32, r, b int, alpha float64, x []float32, n int) []float64 {
	y := make([]float64, n*l.Out)
	for s := range n {
		xs := x[s*l.In : (s+1)*l.In]
		u := make([]float64, b)
		for p := range b {
			for j, v := range xs {
				u[p] += float64(a[p*l.In+j]) * float64(v)
			}
		}
		for o := range l.Out {
			v := float64(l.Bias.Data[o])
			for j, xv := range xs {
				v += float64(l.Weight.Data[o*l.In+j]) * float64(xv)
			}
			for p := range b {
				v += alpha / float64(b) * float64(bm[o*r+p]) * u[p]
			}
			y[s*l.Out+o] = v
		}
	}
	return y
}

// TestDyLoRATruncatedRanks is DyLoRA's defining property: after training,
// every rank b ≤ r_max is an adapter of its own. Under variant "r<b>" each
// layer's output and merged weight are the truncated LoRA
// W0 + (α/b)·B[:, :b]·A[:b], computed here independently in float64; the
// ranks give different models, each with a finite loss; and with no
// variant selected the layer is the full-rank adapter.
func TestDyLoRATruncatedRanks(t *testing.T) {
	for _, frozen := range []bool{true, false} {
		t.Run(fmt.Sprintf("frozen=%v", frozen), func(t *testing.T) {
			const r, alpha = 4, 8.0
			m := refModels(1)[0]
			att := attachRef(t, m, "dylora", map[string]any{"rank": r, "alpha": alpha, "frozen": frozen})
			att.SetTraining(nn.NewRNG(1, "dropout"))
			train(t, m, att, 12, 1e-2)
			att.SetTraining(nil)
			v, ok := att.(Variants)
			if !ok {
				t.Fatal("dylora attachment does not implement Variants")
			}
			if got, want := v.Variants(), []string{"r1", "r2", "r3", "r4"}; !slices.Equal(got, want) {
				t.Fatalf("variants %v, want %v", got, want)
			}
			losses := map[string]float32{}
			for _, name := range append(v.Variants(), "") {
				v.UseVariant(name)
				b := r
				if name != "" {
					fmt.Sscanf(name, "r%d", &b)
				}
				for _, l := range m.targets {
					d := l.Adapter.(*DyLoRA)
					if maxAbs(d.B.Data) == 0 {
						t.Fatalf("%s: B = 0 after training", l.Name)
					}
					xl := nn.New(5, l.In)
					nn.NewRNG(9, "x").FillNormal(xl, 0, 1)
					want := truncatedLoRA(l, d.A.Data, d.B.Data, r, b, alpha, xl.Data, 5)
					got := eval(func(g *nn.Graph) *nn.Tensor { return l.Forward(g, xl) })
					var worst, scale float64
					for i, w := range want {
						worst = max(worst, math.Abs(float64(got[i])-w))
						scale = max(scale, math.Abs(w))
					}
					if worst > 1e-5*scale {
						t.Errorf("variant %q, %s: output off the truncated LoRA of rank %d by %.3g (max |y| %.3g)", name, l.Name, b, worst, scale)
					}
					// merged: W0 + (α/b)·B[:, :b]·A[:b], from its own loop
					mw := l.Merged()
					worst = 0
					for o := range l.Out {
						for j := range l.In {
							w := float64(l.Weight.Data[o*l.In+j])
							for p := range b {
								w += alpha / float64(b) * float64(d.B.Data[o*r+p]) * float64(d.A.Data[p*l.In+j])
							}
							worst = max(worst, math.Abs(float64(mw[o*l.In+j])-w))
						}
					}
					if worst > 1e-5 {
						t.Errorf("variant %q, %s: merged weight off the truncated LoRA by %.3g", name, l.Name, worst)
					}
				}
				loss := eval(m.loss)[0]
				if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
					t.Errorf("variant %q: loss %v", name, loss)
				}
				losses[name] = loss
			}
			if losses["r1"] == losses["r4"] || losses["r2"] == losses["r4"] {
				t.Errorf("truncated ranks give the full model's loss: %v", losses)
			}
			if losses[""] != losses["r4"] {
				t.Errorf("no variant: loss %v, want r_max's %v", losses[""], losses["r4"])
			}
		})
	}
}

// TestDyLoRANestedDropout: at a training step's rank b, frozen mode gives
// a gradient to row b of A and column b of B only; full mode to the first
// b rows and columns and to nothing beyond b; outside training every row
// and column gets one (rank r_max).
func TestDyLoRANestedDropout(t *testing.T) {
	const r = 5
	for _, frozen := range []bool{true, false} {
		m := refModels(1)[0]
		att := attachRef(t, m, "dylora", map[string]any{"rank": r, "frozen": frozen})
		st := att.(*dyloraAttachment).st
		rng := nn.NewRNG(2, "B")
		for _, l := range m.targets {
			rng.FillNormal(l.Adapter.(*DyLoRA).B, 0, 0.1)
		}
		params := att.Params()
		for _, c := range []struct {
			training bool
			b        int
		}{{true, 1}, {true, 3}, {true, 5}, {false, 2}} {
			st.training, st.b = c.training, c.b
			nn.ZeroGrads(params)
			g := nn.NewGraph()
			g.Backward(m.loss(g))
			for _, l := range m.targets {
				d := l.Adapter.(*DyLoRA)
				for p := range r {
					var ga, gb float64
					for j := range l.In {
						ga = max(ga, math.Abs(float64(d.A.Grad[p*l.In+j])))
					}
					for o := range l.Out {
						gb = max(gb, math.Abs(float64(d.B.Grad[o*r+p])))
					}
					want := !c.training || p < c.b && (!frozen || p == c.b-1)
					if (ga > 0) != want || (gb > 0) != want {
						t.Errorf("frozen=%v training=%v b=%d %s: row/column %d has gradient |A| %.3g |B| %.3g, want nonzero %v",
							frozen, c.training, c.b, l.Name, p+1, ga, gb, want)
					}
				}
			}
		}
	}
}

// TestDyLoRARankDraws: the ranks come uniformly from {r_min, …, r_max},
// one per step, from the method's own stream (the same seed gives the same
// ranks; the initialisation is LoRA's at that seed).
func TestDyLoRARankDraws(t *testing.T) {
	const rmin, rmax, n = 2, 6, 5000
	draws := func() []int {
		l := nn.NewLinear("fc", 16, 12, true, nn.NewRNG(1, "init"))
		att, err := Attach("dylora", []*nn.Linear{l}, map[string]any{"rank": rmax, "r_min": rmin}, nn.NewRNG(4, "method"))
		if err != nil {
			t.Fatal(err)
		}
		lo := nn.NewLinear("fc", 16, 12, true, nn.NewRNG(1, "init"))
		if _, err := Attach("lora", []*nn.Linear{lo}, map[string]any{"rank": rmax}, nn.NewRNG(4, "method")); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(l.Adapter.(*DyLoRA).A.Data, lo.Adapter.(*LoRA).A.Data) {
			t.Error("A differs from LoRA's A at the same seed")
		}
		at := att.(*dyloraAttachment)
		var bs []int
		for s := range n {
			bs = append(bs, at.st.b)
			at.AfterStep(s, n)
		}
		return bs
	}
	a := draws()
	if !slices.Equal(a, draws()) {
		t.Fatal("the same seed draws different ranks")
	}
	count := map[int]int{}
	for _, b := range a {
		count[b]++
	}
	for b := rmin; b <= rmax; b++ {
		if want := float64(n) / (rmax - rmin + 1); math.Abs(float64(count[b])-want) > 0.1*want {
			t.Errorf("rank %d drawn %d times in %d, want about %.0f", b, count[b], n, want)
		}
	}
	if len(count) != rmax-rmin+1 {
		t.Errorf("ranks drawn %v, want %d..%d only", count, rmin, rmax)
	}
}
