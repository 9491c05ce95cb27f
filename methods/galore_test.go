package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	// fc1 (48×24) is projected on the right, fc2 (40×48) on the left; a
	// gap of 5 refreshes P at steps 0, 5, 10 and 15 with the moments kept.
	addTorchCase(torchSpec{name: "galore", method: "galore",
		opts: map[string]any{"rank": 4, "update_proj_gap": 5, "scale": 0.5}, lr: 1e-2, clip: 0.05})
}

// projOf returns the projected optimiser a trainer steps.
func projOf(t *testing.T, tr *trainer) *projOptimizer {
	t.Helper()
	po, ok := tr.stepper.(*projOptimizer)
	if !ok {
		t.Fatalf("optimiser is %T, want *projOptimizer", tr.stepper)
	}
	return po
}

// adamWStateBytes trains full fine-tuning of the reference MLP's targeted
// layers for steps steps and returns its AdamW's state bytes.
func adamWStateBytes(t *testing.T, steps int) int64 {
	t.Helper()
	m := refModels(1)[0]
	tr := train(t, m, attachRef(t, m, "full", nil), steps, 1e-3)
	return tr.opt.StateBytes()
}

// TestGaLoreProjectedState: on the reference MLP (fc1 256×784, fc2
// 256×256) GaLore's moments have the projected shape of the smaller side —
// r×784 for fc1 (P 256×r), 256×r for fc2 (P r×256) — its state bytes are
// the projections, moments and the biases' AdamW moments, below AdamW's on
// the same layers (measured), and the Meter holds exactly that; P is
// recomputed exactly at the weight's steps 0, T, 2T; the moments are kept
// across a refresh; and every update ΔW lies in the span of the step's P.
func TestGaLoreProjectedState(t *testing.T) {
	const r, gap, steps, lr = 4, 3, 8, 1e-3
	m := refModels(1)[0]
	att := attachRef(t, m, "galore", map[string]any{"rank": r, "update_proj_gap": gap, "scale": 0.5})
	tr := newTrainer(t, att, m.loss)
	var meter nn.Meter
	tr.opt.Meter = &meter
	po := projOf(t, tr)
	prevP := map[*nn.Linear][]float32{}
	for s := range steps {
		w0 := map[*nn.Linear][]float32{}
		mom0 := map[*nn.Linear][]float32{}
		for _, l := range m.targets {
			w0[l] = slices.Clone(l.Weight.Data)
			if st := po.states[l.Weight].(*galoreState); st.mom != nil {
				mom0[l] = slices.Clone(st.mom)
			}
		}
		tr.step(s, steps, lr)
		for _, l := range m.targets {
			st := po.states[l.Weight].(*galoreState)
			changed := !slices.Equal(st.p, prevP[l])
			if want := s%gap == 0; changed != want {
				t.Errorf("%s step %d: P changed %v, want %v (gap %d)", l.Name, s, changed, want, gap)
			}
			prevP[l] = slices.Clone(st.p)
			// ΔW = −lr·scale·back(ψ) lies in P's span.
			dw := sub(l.Weight.Data, w0[l])
			if res := outOfSpan(st, dw); res > 1e-4*math.Sqrt(dot64(dw, dw)) {
				t.Errorf("%s step %d: |ΔW outside span(P)| = %.3g of |ΔW| = %.3g", l.Name, s, res, math.Sqrt(dot64(dw, dw)))
			}
			// at a refresh the moment continues: m = β1·m_prev + (1−β1)·R_new.
			if s > 0 && s%gap == 0 {
				rNew := st.project(l.Weight.Grad)
				var worst, reset float64
				for i, mi := range st.mom {
					want := 0.9*float64(mom0[l][i]) + 0.1*float64(rNew[i])
					worst = max(worst, math.Abs(float64(mi)-want))
					reset = max(reset, math.Abs(float64(mi)-0.1*float64(rNew[i])))
				}
				if worst > 1e-6*maxAbs(st.mom) || reset < 1e-3*maxAbs(st.mom) {
					t.Errorf("%s step %d: moment after refresh off β1·m + (1−β1)·R by %.3g (off a reset one by %.3g)", l.Name, s, worst, reset)
				}
			}
		}
	}
	var want int64
	for _, l := range m.targets {
		st := po.states[l.Weight].(*galoreState)
		pLen, momLen := l.Out*r, r*l.In // m < n: P m×r, R r×n
		if l.Out >= l.In {
			pLen, momLen = r*l.In, l.Out*r
		}
		if len(st.p) != pLen || len(st.mom) != momLen || len(st.v) != momLen {
			t.Errorf("%s (%d×%d): |P| %d, |m| %d, |v| %d; want %d, %d, %d", l.Name, l.Out, l.In, len(st.p), len(st.mom), len(st.v), pLen, momLen, momLen)
		}
		want += 4*int64(pLen+2*momLen) + 8*int64(l.Out) // + the bias's AdamW moments
	}
	got := po.StateBytes()
	if got != want {
		t.Errorf("StateBytes = %d, want %d", got, want)
	}
	if meter.Current() != got {
		t.Errorf("Meter holds %d bytes, StateBytes %d", meter.Current(), got)
	}
	if adam := adamWStateBytes(t, 2); !(got < adam) {
		t.Errorf("GaLore state %d bytes, AdamW's on the same layers %d: want fewer", got, adam)
	} else {
		t.Logf("optimizer state: GaLore r=%d %d bytes, AdamW %d bytes (%.1f%%)", r, got, adam, 100*float64(got)/float64(adam))
	}
}

// outOfSpan is |ΔW − PPᵀΔW| (left) or |ΔW − ΔW·PᵀP| (right) in float64.
func outOfSpan(st *galoreState, dw []float32) float64 {
	proj := st.project(dw)
	back := make([]float32, len(dw))
	st.back(back, 1, proj, 0)
	d := sub(dw, back)
	return math.Sqrt(dot64(d, d))
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// TestGaLoreNeedsAdamW: with another optimiser the method refuses.
func TestGaLoreNeedsAdamW(t *testing.T) {
	for _, name := range []string{"galore", "fira", "flora"} {
		m := refModels(1)[0]
		att := attachRef(t, m, name, map[string]any{"rank": 4})
		if _, err := att.(OptimizerMaker).Optimizer(&nn.SGD{}); err == nil {
			t.Errorf("%s: accepts SGD", name)
		}
	}
}
