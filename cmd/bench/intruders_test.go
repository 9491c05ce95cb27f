package main

import (
	"fmt"
	"slices"
	"testing"

	"peftbench/results"
)

// TestIntruderCellsSplitSettings checks that configurations differing in
// a swept setting other than the seed (learning rate, α) are separate
// cells, not seeds of one.
func TestIntruderCellsSplitSettings(t *testing.T) {
	var trials []results.TrialRow
	add := func(method string, rank int64, alpha, lr float64, seeds int, count int64) {
		for seed := range seeds {
			opts := "{}"
			if alpha > 0 {
				opts = fmt.Sprintf(`{"alpha":%g,"rank":%d}`, alpha, rank)
			}
			trials = append(trials, results.TrialRow{
				TrialID: fmt.Sprintf("%s-%d-%g-%g-%d", method, rank, alpha, lr, seed), Task: "t", Method: method,
				Rank: rank, Seed: int64(seed), Status: results.StatusOK,
				Config: fmt.Sprintf(`{"sweep":"s","trial_id":"x","index":%d,"method":%q,"rank":%d,"task":"t","seed":%d,"method_options":%s,"train":{"lr":%g,"steps":10}}`,
					len(trials), method, rank, seed, opts, lr),
				Intruders: []results.IntruderCount{{Epsilon: 0.5, Count: count + int64(seed)}},
			})
		}
	}
	add("full", 0, 0, 1e-3, 2, 10)
	add("full", 0, 0, 1e-4, 2, 0)
	add("full", 0, 0, 3e-4, 2, 5)
	add("lora", 8, 16, 1e-3, 3, 1)
	add("lora", 8, 8, 1e-3, 3, 2)
	add("lora", 4, 8, 1e-3, 3, 3)
	cells, err := intruderCells(trials, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		method   string
		rank     int64
		alpha    float64
		settings []string
		counts   []int64
	}
	wants := []want{
		{"full", 0, 0, []string{"train.lr=0.0001"}, []int64{0, 1}},
		{"full", 0, 0, []string{"train.lr=0.0003"}, []int64{5, 6}},
		{"full", 0, 0, []string{"train.lr=0.001"}, []int64{10, 11}},
		{"lora", 4, 8, nil, []int64{3, 4, 5}},
		{"lora", 8, 8, nil, []int64{2, 3, 4}},
		{"lora", 8, 16, nil, []int64{1, 2, 3}},
	}
	if len(cells) != len(wants) {
		t.Fatalf("%d cells, want %d: %+v", len(cells), len(wants), cells)
	}
	for i, w := range wants {
		c := cells[i]
		alpha := 0.0
		if c.Alpha != nil {
			alpha = *c.Alpha
		}
		if c.Method != w.method || c.Rank != w.rank || alpha != w.alpha || !slices.Equal(c.Settings, w.settings) || !slices.Equal(c.Counts, w.counts) {
			t.Errorf("cell %d = %s r%d α%g %v %v, want %s r%d α%g %v %v", i, c.Method, c.Rank, alpha, c.Settings, c.Counts,
				w.method, w.rank, w.alpha, w.settings, w.counts)
		}
	}
}

func TestIntruderCellsErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		trials []results.TrialRow
	}{
		{"none analysed", []results.TrialRow{{TrialID: "a", Status: results.StatusOK, Config: "{}"}}},
		{"epsilon missing", []results.TrialRow{{TrialID: "a", Status: results.StatusOK, Config: "{}",
			Intruders: []results.IntruderCount{{Epsilon: 0.3, Count: 1}}}}},
		{"bad config", []results.TrialRow{{TrialID: "a", Status: results.StatusOK, Config: "{",
			Intruders: []results.IntruderCount{{Epsilon: 0.5, Count: 1}}}}},
	} {
		if _, err := intruderCells(tc.trials, 0.5); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
