package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		a := l.Adapter.(*AFLoRA)
		return map[string][]float32{"lora_A": slices.Clone(a.A.Data), "lora_B": slices.Clone(a.B.Data)}
	}
	// Defaults: the first score window closes at step 10, and every
	// projection freezes then (the final phase starts at step 7).
	addTorchCase(torchSpec{name: "aflora", method: "aflora", opts: nil, lr: 1e-2, clip: 0.05, export: export})
	// Two-step windows: projections freeze one by one in the cubic phase.
	addTorchCase(torchSpec{name: "aflora-cubic", method: "aflora",
		opts: map[string]any{"rank": 2, "delta_t": 2, "tinit": 0.1, "tfinal": 0.3, "d_initial": 0.5},
		lr:   1e-2, clip: 0.05, export: export})
}

// TestAFLoRAInit: A and B Kaiming-uniform with gain √2 (bound √(6/fan_in):
// In for A, r for B), d = d_initial and b_v = 0, the factor that makes
// ΔW = 0 at step 0.
func TestAFLoRAInit(t *testing.T) {
	l := nn.NewLinear("fc", 200, 300, true, nn.NewRNG(1, "init"))
	if _, err := Attach("aflora", []*nn.Linear{l}, map[string]any{"rank": 16}, nn.NewRNG(1, "method")); err != nil {
		t.Fatal(err)
	}
	a := l.Adapter.(*AFLoRA)
	for _, c := range []struct {
		name  string
		t     *nn.Tensor
		bound float64
	}{{"A", a.A, math.Sqrt(6.0 / 200)}, {"B", a.B, math.Sqrt(6.0 / 16)}} {
		if hi := maxAbs(c.t.Data); hi >= c.bound || hi < 0.95*c.bound {
			t.Errorf("max |%s| = %.4g, want U(±%.4g)", c.name, hi, c.bound)
		}
	}
	for _, v := range a.D.Data {
		if v != 0.1 {
			t.Fatalf("d = %v, want 0.1", a.D.Data)
		}
	}
	if maxAbs(a.BV.Data) != 0 {
		t.Error("b_v ≠ 0 at init")
	}
	if d := relDiff(l.Merged(), l.Weight.Data); d != 0 {
		t.Errorf("ΔW = %.3g at init", d)
	}
}

// TestAFLoRASchedule: the kept fraction is 1 through t_i, (1 − (t −
// t_i)/(T − t_i − t_f))³ with a freezing step every delta_t steps, then 0
// with a freezing step every step (the code's schedule_threshold_comb).
func TestAFLoRASchedule(t *testing.T) {
	for _, c := range []struct {
		t        int
		keep     float64
		freezing bool
	}{{0, 1, false}, {10, 1, false}, {11, math.Pow(1-1.0/20, 3), false}, {20, math.Pow(0.5, 3), true},
		{29, math.Pow(1-19.0/20, 3), false}, {30, 0, true}, {31, 0, true}, {99, 0, true}} {
		keep, freezing := afloraKeep(c.t, 100, 10, 70, 10)
		if math.Abs(keep-c.keep) > 1e-12 || freezing != c.freezing {
			t.Errorf("t = %d: keep %.6g freezing %v, want %.6g %v", c.t, keep, freezing, c.keep, c.freezing)
		}
	}
}

// TestAFLoRAFreezing: on the reference MLP, projections freeze over the
// run — at each freezing step every one frozen has a lower mean score than
// every one kept — and all are frozen in the final phase; a frozen
// projection never changes again (no update, no weight decay), while d and
// b_v keep training. Planted bugs this catches: freezing the
// highest-scoring projections (means > threshold), and freezing before
// the update instead of after it.
func TestAFLoRAFreezing(t *testing.T) {
	m := refModels(1)[0]
	const total = 24
	att := attachRef(t, m, "aflora", map[string]any{"rank": 4, "delta_t": 2, "tinit": 0.1, "tfinal": 0.25})
	at := att.(*afloraAttachment)
	tr := newTrainer(t, att, m.loss)
	tr.opt.WeightDecay = 0.1
	snap := map[*nn.Tensor][]float32{}
	for s := range total {
		for _, a := range at.adapters {
			for _, p := range []*nn.Tensor{a.A, a.B, a.D, a.BV} {
				snap[p] = slices.Clone(p.Data)
			}
		}
		trainable := at.projections()
		tr.step(s, total, 1e-2)
		var frozen, kept []float64
		for _, p := range trainable {
			sc := at.score[p]
			var mean float64
			for i := range sc.expIpt {
				mean += float64(sc.expIpt[i] * sc.expUnc[i])
			}
			mean /= float64(len(sc.expIpt))
			if p.Grad == nil {
				frozen = append(frozen, mean)
				if at.FrozenAt[p.Name] != s {
					t.Errorf("step %d: %s frozen at %d", s, p.Name, at.FrozenAt[p.Name])
				}
				// its last update was this step's
				if slices.Equal(snap[p], p.Data) {
					t.Errorf("step %d: %s frozen without this step's update", s, p.Name)
				}
			} else {
				kept = append(kept, mean)
			}
		}
		if len(frozen) > 0 && len(kept) > 0 && slices.Max(frozen) >= slices.Min(kept) {
			t.Errorf("step %d: frozen projections' scores reach %.4g, kept ones' start at %.4g", s, slices.Max(frozen), slices.Min(kept))
		}
		for _, a := range at.adapters {
			for _, p := range []*nn.Tensor{a.A, a.B} {
				if p.Grad == nil && !slices.Contains(trainable, p) && !slices.Equal(snap[p], p.Data) {
					t.Errorf("step %d: frozen %s changed", s, p.Name)
				}
			}
			if slices.Equal(snap[a.BV], a.BV.Data) {
				t.Errorf("step %d: b_v did not train", s)
			}
		}
	}
	tfinal := int(math.Round(0.25 * total))
	if n := len(at.projections()); n != 0 {
		t.Errorf("%d projections still trainable after the final phase", n)
	}
	var steps []int
	for _, s := range at.FrozenAt {
		steps = append(steps, s)
		if s > total-tfinal+1 {
			t.Errorf("frozen at step %d, after the final phase began (%d)", s, total-tfinal+1)
		}
	}
	if slices.Min(steps) == slices.Max(steps) {
		t.Errorf("every projection froze at step %d: the cubic phase froze none gradually", steps[0])
	}
	t.Logf("frozen at steps %v", at.FrozenAt)
}
