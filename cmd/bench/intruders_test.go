package main

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"peftbench/results"
)

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

func TestParseLevels(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []float64
		bad  bool
	}{
		{"", nil, false},
		{"2.4", []float64{2.4}, false},
		{"2.4, 2.6", []float64{2.4, 2.6}, false},
		{"2.4,x", nil, true},
		{"NaN", nil, true},
	} {
		got, err := parseLevels(tc.in)
		if (err != nil) != tc.bad || !slices.Equal(got, tc.want) {
			t.Errorf("parseLevels(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// TestIntrudersMatchGolden runs bench intruders --match on a results
// folder written by the results package and compares its tables with the
// committed output.
func TestIntrudersMatchGolden(t *testing.T) {
	dir := t.TempDir()
	for _, tr := range matchedTrials() {
		tr.Sweep = "matched"
		if err := results.WriteShard(dir, &results.Shard{Trial: tr}); err != nil {
			t.Fatal(err)
		}
	}
	if err := results.Compact(dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args   []string
		golden string
	}{
		{[]string{"--match"}, "intruders-match.txt"},
		{[]string{"--at", "0.55,2.05"}, "intruders-at.txt"},
	} {
		var out, errb bytes.Buffer
		if err := runIntruders(append([]string{dir}, c.args...), &out, &errb); err != nil {
			t.Fatalf("bench intruders %v: %v\n%s", c.args, err, errb.String())
		}
		checkGolden(t, c.golden, fmt.Sprintf("bench intruders %v", c.args), out.Bytes())
	}
}
