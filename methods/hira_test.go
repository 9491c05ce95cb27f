package methods

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		h := l.Adapter.(*HiRA)
		m := map[string][]float32{"hira_A": slices.Clone(h.A.Data)}
		if maxAbs(h.B.Data) != 0 {
			m["hira_B"] = slices.Clone(h.B.Data)
		}
		return m
	}
	// ΔW = W0⊙(B·A) is small next to LoRA's B·A (|W0| ~ 1/√in): a larger
	// learning rate moves it far enough in 20 steps.
	addTorchCase(torchSpec{name: "hira", method: "hira", opts: map[string]any{"rank": 4},
		lr: 5e-2, clip: 0.02, export: export})
	addTorchCase(torchSpec{name: "hira-gaussian", method: "hira", opts: map[string]any{"rank": 8, "init_weights": "gaussian"},
		lr: 5e-2, clip: 0.05, export: export})
}

// TestHiRAHadamard: ΔW (Merged − W0) is W0 ⊙ (B·A), computed here in
// float64, after training from HF's inits and from a random one, and its
// rank exceeds r — it is about min(out, in), where LoRA's B·A has rank r.
func TestHiRAHadamard(t *testing.T) {
	for _, c := range []struct {
		rank  int
		init  string
		steps int
	}{{2, "true", 4}, {4, "gaussian", 3}, {1, "false", 0}} {
		t.Run(fmt.Sprintf("r=%d,init=%s", c.rank, c.init), func(t *testing.T) {
			m := refModels(1)[0]
			att := attachRef(t, m, "hira", map[string]any{"rank": c.rank, "init_weights": c.init})
			train(t, m, att, c.steps, 1e-2)
			for _, l := range m.targets {
				h := l.Adapter.(*HiRA)
				r := c.rank
				got := deltaOf(l)
				var worst, scale float64
				for i := range l.Out {
					for j := range l.In {
						var ba float64
						for p := range r {
							ba += float64(h.B.Data[i*r+p]) * float64(h.A.Data[p*l.In+j])
						}
						want := float64(l.Weight.Data[i*l.In+j]) * ba
						worst = max(worst, math.Abs(float64(got[i*l.In+j])-want))
						scale = max(scale, math.Abs(want))
					}
				}
				if scale == 0 {
					t.Fatalf("%s: ΔW = 0 after %d steps", l.Name, c.steps)
				}
				if worst > 1e-4*scale {
					t.Errorf("%s: ΔW off W0⊙(B·A) by %.3g (max |ΔW| %.3g)", l.Name, worst, scale)
				}
				// generically full; a square W0 leaves a few singular values
				// under the 1e-5 relative cut-off.
				if rk, full := hadamardRank(got, l.Out, l.In), min(l.Out, l.In); rk <= r || 10*rk < 9*full {
					t.Errorf("%s: rank(ΔW) = %d, want > r = %d and near min(out, in) = %d", l.Name, rk, r, full)
				}
			}
		})
	}
}

// TestHiRAInit: A Kaiming-uniform (fan-in In) or N(0, 1/r²), B = 0; false
// draws both from N(0, 1).
func TestHiRAInit(t *testing.T) {
	for _, c := range []struct {
		init        string
		aMax, aStd  float64
		bZero       bool
		bStdNonzero float64
	}{{"true", 1 / math.Sqrt(48), 0, true, 0}, {"gaussian", 0, 1.0 / 8, true, 0}, {"false", 0, 1, false, 1}} {
		l := nn.NewLinear("fc", 48, 40, true, nn.NewRNG(1, "init"))
		if _, err := Attach("hira", []*nn.Linear{l}, map[string]any{"rank": 8, "init_weights": c.init}, nn.NewRNG(1, "method")); err != nil {
			t.Fatal(err)
		}
		h := l.Adapter.(*HiRA)
		if c.aMax > 0 {
			if hi := maxAbs(h.A.Data); hi >= c.aMax || hi < 0.9*c.aMax {
				t.Errorf("%s: max |A| = %.4g, want U(±%.4g)", c.init, hi, c.aMax)
			}
		}
		if c.aStd > 0 {
			if sd := stdOf(h.A.Data); math.Abs(sd-c.aStd) > 0.1*c.aStd {
				t.Errorf("%s: std(A) = %.4g, want %.4g", c.init, sd, c.aStd)
			}
		}
		if (maxAbs(h.B.Data) == 0) != c.bZero {
			t.Errorf("%s: B zero = %v, want %v", c.init, maxAbs(h.B.Data) == 0, c.bZero)
		}
		if c.bStdNonzero > 0 {
			if sd := stdOf(h.B.Data); math.Abs(sd-c.bStdNonzero) > 0.1 {
				t.Errorf("%s: std(B) = %.4g, want %.4g", c.init, sd, c.bStdNonzero)
			}
		}
	}
}

func stdOf(x []float32) float64 {
	var s, s2 float64
	for _, v := range x {
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	n := float64(len(x))
	return math.Sqrt(s2/n - (s/n)*(s/n))
}

// TestHiRADropout: hira_dropout makes training passes random;
// SetTraining(nil) restores evaluation.
func TestHiRADropout(t *testing.T) {
	l, att, x, _, full := lycorisDropoutCase(t, "hira", map[string]any{"rank": 4, "init_weights": "false", "hira_dropout": 0.5})
	fwd := func(g *nn.Graph) *nn.Tensor { return l.Forward(g, x) }
	att.SetTraining(nn.NewRNG(1, "dropout"))
	y1, y2 := eval(fwd), eval(fwd)
	if relDiff(y1, full) == 0 || relDiff(y1, y2) == 0 {
		t.Error("hira_dropout on: outputs are deterministic")
	}
	att.SetTraining(nil)
	if d := relDiff(eval(fwd), full); d != 0 {
		t.Errorf("dropout off: outputs moved by %g", d)
	}
}
