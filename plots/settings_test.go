package plots

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"peftbench/results"
)

// settingsData is full fine-tuning at three learning rates and LoRA at
// α = 2r and α = 8 over ranks 1, 4 and 16 (α = 2r = 8 at r = 4, run once),
// two seeds each.
func settingsData() *Data {
	d := &Data{}
	add := func(method string, rank int64, alpha, lr float64) {
		for seed := range 2 {
			opts := "{}"
			if alpha > 0 {
				opts = fmt.Sprintf(`{"alpha":%g,"rank":%d}`, alpha, rank)
			}
			d.Trials = append(d.Trials, results.TrialRow{
				TrialID: fmt.Sprint(len(d.Trials)), Task: "t", Method: method, Rank: rank, Seed: int64(seed),
				Status: results.StatusOK, TargetMetric: lr * 100, Forgetting: float64(rank),
				Config: fmt.Sprintf(`{"method":%q,"rank":%d,"seed":%d,"method_options":%s,"train":{"lr":%g}}`, method, rank, seed, opts, lr),
			})
		}
	}
	for _, lr := range []float64{1e-3, 1e-4, 3e-4} {
		add("full", 0, 0, lr)
	}
	for _, r := range []int64{1, 4, 16} {
		add("lora", r, float64(2*r), 1e-3)
		if r != 4 {
			add("lora", r, 8, 1e-3)
		}
	}
	return d
}

func TestCellsSplitSettings(t *testing.T) {
	var got []string
	for _, c := range settingsData().Cells("t") {
		got = append(got, fmt.Sprintf("%s/%d", c.Label(), len(c.Trials)))
	}
	want := []string{"full lr=1e-4/2", "full lr=3e-4/2", "full lr=1e-3/2",
		"lora r=1 α=2/2", "lora r=1 α=8/2", "lora r=4/2", "lora r=16 α=8/2", "lora r=16 α=32/2"}
	if !slices.Equal(got, want) {
		t.Errorf("cells %q, want %q", got, want)
	}
}

func TestLines(t *testing.T) {
	cells := settingsData().Cells("t")
	for _, tc := range []struct {
		unranked bool
		want     []string
	}{
		// Full fine-tuning's learning rates are one line per rate on a
		// rank axis, and one curve when joined in a scatter; LoRA's α
		// rules share the rank-4 point.
		{true, []string{"full lr=1e-4: 0", "full lr=3e-4: 0", "full lr=1e-3: 0", "lora α=2r: 1 4 16", "lora α=8: 1 4 16"}},
		{false, []string{"full: 0 0 0", "lora α=2r: 1 4 16", "lora α=8: 1 4 16"}},
	} {
		var got []string
		for _, ln := range lines(cells, tc.unranked) {
			s := ln.label + ":"
			for _, c := range ln.cells {
				s += fmt.Sprint(" ", c.Rank)
			}
			got = append(got, s)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("lines(unranked %v) = %q, want %q", tc.unranked, got, tc.want)
		}
	}
}

// TestForgettingLawJoint checks the joint law's panel: with forgetting
// exactly c + A·P^α·N^β, every point lies on the drawn curve c + x.
func TestForgettingLawJoint(t *testing.T) {
	const c, A, alpha, beta = 0.01, 1e-4, 0.5, 0.8
	d := &Data{}
	for _, r := range []int64{1, 2, 4, 8} {
		for _, n := range []int64{25, 50, 100, 200} {
			p := 1000 * r
			d.Trials = append(d.Trials, results.TrialRow{TrialID: fmt.Sprint(r, "-", n), Task: "t", Method: "lora",
				Rank: r, Steps: n, TrainableParams: p, Status: results.StatusOK, TargetLoss: 1 / float64(r*n),
				Forgetting: c + A*math.Pow(float64(p), alpha)*math.Pow(float64(n), beta)})
		}
	}
	var joint *LawFit
	for _, lf := range d.Fits("t") {
		if lf.Form == "power" {
			joint = lf
		}
	}
	if joint == nil || joint.Fit == nil {
		t.Fatalf("no joint fit: %+v", joint)
	}
	col := joint.collapsed()
	for i, x := range col.x {
		want := c + A*math.Pow(float64(joint.x[i][0]), alpha)*math.Pow(float64(joint.x[i][1]), beta)
		if got := col.predict(x[0]); math.Abs(got-col.y[i]) > 1e-6*want || math.Abs(col.y[i]-want) > 1e-12 {
			t.Errorf("point %d: curve %g at x = %g, forgetting %g, want %g", i, got, x[0], col.y[i], want)
		}
	}
	figs, why := forgettingLaw(d, "t")
	if len(figs) != 1 || len(figs[0].panels) != 4 {
		t.Errorf("forgetting-law: %d figures (%s), want one with 4 panels (P, N, joint, L_ft)", len(figs), why)
	}
}

// TestLinesSplitWithinRank checks that a setting swept at every rank (two
// learning rates) splits a method's line in every view.
func TestLinesSplitWithinRank(t *testing.T) {
	d := &Data{}
	for _, r := range []int64{1, 8} {
		for _, lr := range []float64{3e-3, 1e-3} {
			d.Trials = append(d.Trials, results.TrialRow{TrialID: fmt.Sprint(r, lr), Task: "t", Method: "lora", Rank: r,
				Status: results.StatusOK, Config: fmt.Sprintf(`{"method_options":{"alpha":%d},"train":{"lr":%g}}`, 2*r, lr)})
		}
	}
	want := []string{"lora α=2r lr=1e-3: 1 8", "lora α=2r lr=3e-3: 1 8"}
	for _, unranked := range []bool{false, true} {
		var got []string
		for _, ln := range lines(d.Cells("t"), unranked) {
			s := ln.label + ":"
			for _, c := range ln.cells {
				s += fmt.Sprint(" ", c.Rank)
			}
			got = append(got, s)
		}
		if !slices.Equal(got, want) {
			t.Errorf("lines(unranked %v) = %q, want %q", unranked, got, want)
		}
	}
}
