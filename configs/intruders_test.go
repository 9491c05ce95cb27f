package configs

import (
	"fmt"
	"math"
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
	cells, err := IntruderCells(trials, 0.5)
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
		if _, err := IntruderCells(tc.trials, 0.5); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestMatchedRows checks the matched-loss reading: each configuration's
// runs along lr form a curve per seed, read at full fine-tuning's losses
// (or --at levels), without extrapolating.
func TestMatchedRows(t *testing.T) {
	cells, err := IntruderCells(matchedTrials(), 0.5)
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		method string
		rank   int64
		level  float64
	}
	for _, tc := range []struct {
		name   string
		levels []float64
		want   map[key][]float64 // per-seed values; nil = the curve does not reach
	}{
		{"full fine-tuning's losses", nil, map[key][]float64{
			// full: its levels are the seed means 1.05 and 2.05.
			{"full", 0, 1.05}: {0, 1}, {"full", 0, 2.05}: {0, 1},
			// lora r=1 seed 0: (1.5, 6)–(3.0, 0) → at 2.05: 6·(3.0−2.05)/1.5 = 3.8;
			// seed 1: (1.6, 7)–(3.1, 1) → 1 + 6·(3.1−2.05)/1.5 = 5.2. 1.05 unreached.
			{"lora", 1, 1.05}: nil, {"lora", 1, 2.05}: {3.8, 5.2},
			// lora r=8 seed 0: (0.5, 4)–(2.5, 0): 4·(2.5−x)/2; seed 1: (0.6, 5)–(2.6, 1).
			{"lora", 8, 1.05}: {2.9, 1 + 4*(2.6-1.05)/2}, {"lora", 8, 2.05}: {0.9, 1 + 4*(2.6-2.05)/2},
		}},
		{"--at", []float64{0.55}, map[key][]float64{
			// r=8's mean curve reaches 0.55; seed 1's own runs start at
			// 0.6, so it reads its nearest run (count 5).
			{"full", 0, 0.55}: nil, {"lora", 1, 0.55}: nil, {"lora", 8, 0.55}: {3.9, 5},
		}},
	} {
		rows, notes := Matched(cells, "lr", tc.levels)
		if len(notes) != 0 {
			t.Errorf("%s: notes %q", tc.name, notes)
		}
		if len(rows) != len(tc.want) {
			t.Errorf("%s: %d rows, want %d", tc.name, len(rows), len(tc.want))
		}
		for _, r := range rows {
			k := key{r.Method, r.Rank, math.Round(r.Level*1000) / 1000}
			want, ok := tc.want[k]
			if !ok {
				t.Errorf("%s: unexpected row %+v", tc.name, k)
				continue
			}
			if r.Points != 2 || r.AllSeeds != 2 || len(r.Settings) != 0 {
				t.Errorf("%s: %v: points %d, seeds %d, settings %v; want 2, 2, none", tc.name, k, r.Points, r.AllSeeds, r.Settings)
			}
			if len(r.Values) != len(want) {
				t.Errorf("%s: %v: values %v, want %v", tc.name, k, r.Values, want)
				continue
			}
			for i := range want {
				if math.Abs(r.Values[i]-want[i]) > 1e-9 {
					t.Errorf("%s: %v: values %v, want %v", tc.name, k, r.Values, want)
					break
				}
			}
		}
	}
	// Without full fine-tuning or --at there is nothing to match.
	var adapters []*IntruderCell
	for _, c := range cells {
		if c.Method != "full" {
			adapters = append(adapters, c)
		}
	}
	if rows, notes := Matched(adapters, "lr", nil); len(rows) != 0 || len(notes) != 1 {
		t.Errorf("no full fine-tuning: %d rows, notes %q; want none and one note", len(rows), notes)
	}
}

// matchedTrials is full fine-tuning and LoRA r = 1 and r = 8 at two
// learning rates, two seeds; seed s adds 0.1·s to the loss and s to the
// count.
func matchedTrials() []results.TrialRow {
	var trials []results.TrialRow
	add := func(method string, rank int64, lr, loss float64, count int64, seeds ...int64) {
		for _, seed := range seeds {
			opts := "{}"
			if rank > 0 {
				opts = fmt.Sprintf(`{"alpha":%d,"rank":%d}`, 2*rank, rank)
			}
			trials = append(trials, results.TrialRow{
				TrialID: fmt.Sprintf("%s-%d-%g-%d", method, rank, lr, seed), Task: "t", Method: method,
				Rank: rank, Seed: seed, Status: results.StatusOK, TargetLoss: loss + float64(seed)/10,
				Config: fmt.Sprintf(`{"method":%q,"rank":%d,"task":"t","seed":%d,"method_options":%s,"train":{"lr":%g}}`,
					method, rank, seed, opts, lr),
				Intruders: []results.IntruderCount{{Epsilon: 0.5, Count: count + seed}},
			})
		}
	}
	add("full", 0, 1e-4, 2.0, 0, 0, 1)
	add("full", 0, 1e-3, 1.0, 0, 0, 1)
	add("lora", 1, 1e-4, 3.0, 0, 0, 1)
	add("lora", 1, 1e-3, 1.5, 6, 0, 1)
	add("lora", 8, 1e-4, 2.5, 0, 0, 1)
	add("lora", 8, 1e-3, 0.5, 4, 0, 1)
	return trials
}
