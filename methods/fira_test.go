package methods

import (
	"math"
	"slices"
	"testing"
)

func init() {
	addTorchCase(torchSpec{name: "fira", method: "fira",
		opts: map[string]any{"rank": 4, "update_proj_gap": 5}, lr: 1e-2, clip: 0.05})
	addTorchCase(torchSpec{name: "fira-scale1", method: "fira",
		opts: map[string]any{"rank": 2, "update_proj_gap": 7, "scale": 1.0}, lr: 1e-2, clip: 0.05})
}

// TestFiraFullRankResidual: Fira keeps GaLore's projected state (plus one
// float per weight), below AdamW's on the same layers, yet its update is
// full-rank: most of ΔW lies outside span(P), where GaLore's has none; and
// the norm-growth limiter holds the residual's norm to at most γ = 1.01
// times the previous step's.
func TestFiraFullRankResidual(t *testing.T) {
	const r, gap, steps, lr = 4, 3, 8, 1e-3
	m := refModels(1)[0]
	att := attachRef(t, m, "fira", map[string]any{"rank": r, "update_proj_gap": gap})
	tr := newTrainer(t, att, m.loss)
	po := projOf(t, tr)
	limited := 0
	prev := map[*galoreState]float64{}
	for s := range steps {
		w0 := map[string][]float32{}
		for _, l := range m.targets {
			w0[l.Name] = slices.Clone(l.Weight.Data)
		}
		tr.step(s, steps, lr)
		for _, l := range m.targets {
			st := po.states[l.Weight].(*galoreState)
			dw := sub(l.Weight.Data, w0[l.Name])
			if out, all := outOfSpan(st, dw), math.Sqrt(dot64(dw, dw)); out < 0.5*all {
				t.Errorf("%s step %d: |ΔW outside span(P)| = %.3g of |ΔW| = %.3g, want most of it", l.Name, s, out, all)
			}
			if s > 0 {
				if st.prevNorm > firaGamma*prev[st]*(1+1e-6) {
					t.Errorf("%s step %d: ‖S‖ = %.4g grew more than γ from %.4g", l.Name, s, st.prevNorm, prev[st])
				}
				if math.Abs(st.prevNorm-firaGamma*prev[st]) < 1e-6*st.prevNorm {
					limited++
				}
			}
			prev[st] = st.prevNorm
		}
	}
	if limited == 0 {
		t.Error("the norm-growth limiter never acted")
	}
	var want int64
	for _, l := range m.targets {
		want += 4*int64(l.Out*r+2*r*l.In) + 4 + 8*int64(l.Out) // fc1 m < n; fc2 square: r·n + 2·m·r, the same
	}
	if got, adam := po.StateBytes(), adamWStateBytes(t, 2); got != want || !(got < adam) {
		t.Errorf("StateBytes = %d, want %d, below AdamW's %d", got, want, adam)
	}
}
