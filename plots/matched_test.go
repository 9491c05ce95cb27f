package plots

import (
	"fmt"
	"math"
	"testing"

	"peftbench/results"
)

// matchedData is full fine-tuning and LoRA (α = 2r and α = 8; r = 4 once)
// at ranks 1, 4 and 16, each over three learning rates, three seeds; seed
// s adds 0.01·s to the target loss. Intruders rise as the loss falls and
// fall with rank.
func matchedData() *Data {
	d := &Data{}
	add := func(method string, rank int64, alpha, lr, loss float64, count int64) {
		for seed := range int64(3) {
			opts := "{}"
			if alpha > 0 {
				opts = fmt.Sprintf(`{"alpha":%g,"rank":%d}`, alpha, rank)
			}
			d.Trials = append(d.Trials, results.TrialRow{
				TrialID: fmt.Sprint(len(d.Trials)), Task: "t", Method: method, Rank: rank, Seed: seed,
				Status: results.StatusOK, TargetLoss: loss + 0.01*float64(seed),
				Intruders: []results.IntruderCount{{Epsilon: 0.3, Count: 0}, {Epsilon: 0.5, Count: count}},
				Config:    fmt.Sprintf(`{"method":%q,"rank":%d,"seed":%d,"method_options":%s,"train":{"lr":%g}}`, method, rank, seed, opts, lr),
			})
		}
	}
	lrs := []float64{1e-4, 1e-3, 1e-2}
	for i, lr := range lrs {
		add("full", 0, 0, lr, 2.0-0.5*float64(i), 0)
	}
	for _, r := range []int64{1, 4, 16} {
		l0 := 2.2 - 0.1*math.Log2(float64(r))
		counts := map[int64][]int64{1: {2, 6, 10}, 4: {1, 3, 5}, 16: {0, 1, 2}}[r]
		for i, lr := range lrs {
			add("lora", r, float64(2*r), lr, l0-0.5*float64(i), counts[i])
			if r != 4 {
				add("lora", r, 8, lr, l0-0.5*float64(i), counts[i]+1)
			}
		}
	}
	return d
}

// TestIntrudersMatched checks the reading at matched loss against values
// worked by hand, and the figure's panels: one per full fine-tuning loss.
func TestIntrudersMatched(t *testing.T) {
	d := matchedData()
	merged, parts := curveCells(d.Cells("t"))
	if len(merged) != 6 {
		t.Fatalf("%d curves, want 6 (full, r1 ×2, r4, r16 ×2)", len(merged))
	}
	m := IntruderMetric(0.5)
	find := func(method string, rank int64, alpha float64) *Cell {
		for _, c := range merged {
			if c.Method == method && c.Rank == rank && (alpha == 0 || c.Alpha == alpha) {
				return c
			}
		}
		t.Fatalf("no curve %s r%d α%g", method, rank, alpha)
		return nil
	}
	for _, tc := range []struct {
		method  string
		rank    int64
		alpha   float64
		level   float64
		reached bool
		mean    float64
	}{
		// Between (1.7+.01s, 6) and (1.2+.01s, 10): 7.52, 7.6, 7.68.
		{"lora", 1, 2, 1.51, true, 7.6},
		{"lora", 1, 8, 1.51, true, 8.6},
		// Seed 0 just past its run at 1.5 (count 3), seed 2 just before.
		{"lora", 4, 8, 1.51, true, 3},
		{"lora", 16, 32, 1.51, true, 0.6},
		{"lora", 16, 8, 1.51, true, 1.6},
		// r = 1 never gets below 1.21; r = 16 never above 1.81.
		{"lora", 1, 2, 1.01, false, 0},
		{"lora", 16, 32, 2.01, false, 0},
		{"full", 0, 0, 1.01, true, 0},
	} {
		r := readCurve(parts[find(tc.method, tc.rank, tc.alpha)], m, tc.level)
		if r.Reached != tc.reached || (r.Reached && math.Abs(r.Summary.Mean-tc.mean) > 1e-9) {
			t.Errorf("%s r%d α%g at %v: reached %v mean %v; want %v %v", tc.method, tc.rank, tc.alpha, tc.level, r.Reached, r.Summary.Mean, tc.reached, tc.mean)
		}
	}
	figs, why := intrudersMatched(d, "t")
	if len(figs) != 1 {
		t.Fatalf("no figure: %s", why)
	}
	if n := len(figs[0].panels); n != 3 {
		t.Errorf("%d panels, want 3 (full fine-tuning's losses)", n)
	}
	// The fixture's golden test cannot draw it (it sweeps no learning
	// rate), so it has its own golden.
	got, err := figs[0].encode("png", goldenDPI)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "intruders-matched-synthetic", got)
}

// TestIntrudersMatchedSkips checks the figure is skipped, with a reason,
// where there is nothing to match.
func TestIntrudersMatchedSkips(t *testing.T) {
	d := matchedData()
	var noFull, oneLR Data
	for _, tr := range d.Trials {
		if tr.Method != "full" {
			noFull.Trials = append(noFull.Trials, tr)
		}
		if tr.Method == "full" && tr.TargetLoss > 1.9 || tr.Method != "full" && tr.TargetLoss < 1.75 && tr.TargetLoss > 1.45 {
			oneLR.Trials = append(oneLR.Trials, tr) // one lr per adapter curve
		}
	}
	for name, d := range map[string]*Data{"no full fine-tuning": &noFull, "no learning-rate curve": &oneLR} {
		if figs, why := intrudersMatched(d, "t"); len(figs) != 0 || why == "" {
			t.Errorf("%s: %d figures, reason %q; want a skip", name, len(figs), why)
		}
	}
}
