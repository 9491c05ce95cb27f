package configs

import (
	"math"
	"slices"
	"testing"

	"peftbench/results"
)

func TestShortPair(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"train.lr=0.0001", "lr=1e-4"},
		{"train.lr=0.000707", "lr=7.07e-4"},
		{"train.lr=0.001", "lr=1e-3"},
		{"train.lr=0.03", "lr=0.03"},
		{"method_options.alpha=16", "α=16"},
		{"train.steps=800", "steps=800"},
		{"train.schedule=\"linear\"", "schedule=linear"},
		{"task_options.n=2500000", "n=2.5e6"},
	} {
		if got := ShortPair(tc.in); got != tc.want {
			t.Errorf("ShortPair(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestColumnLookup(t *testing.T) {
	row := &results.TrialRow{TargetLoss: 1.5, TrainableParams: 7, Extra: map[string]float64{"refusal_retention": 0.9, "odd": 3}}
	for _, tc := range []struct {
		name          string
		known, higher bool
		want          float64
	}{
		{"target_loss", true, false, 1.5},
		{"trainable_params", true, false, 7},
		{"refusal_retention", true, true, 0.9},
		{"odd", false, false, 3},
		{"missing", false, false, math.NaN()},
	} {
		c, ok := Lookup(tc.name)
		got := c.Value(row)
		if ok != tc.known || c.Higher != tc.higher || !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("Lookup(%q) = %v (known %v, higher %v), want %v (%v, %v)", tc.name, got, ok, c.Higher, tc.want, tc.known, tc.higher)
		}
	}
	if !IsColumn("wall_seconds") || IsColumn("refusal_retention") {
		t.Error("IsColumn: wall_seconds is a column, refusal_retention an extra key")
	}
}

// TestColumnsSetByMetricName: every numeric column of the registry reads
// back what TrialRow.SetMetric stored under its name (so a trainer's
// summary of that name lands in the column, not in extra), and a
// hyperparameter reads from Params.
func TestColumnsSetByMetricName(t *testing.T) {
	for _, name := range ColumnNames() {
		if name == "wall_seconds" || name == "rank" {
			continue // the runner's own measure and the identity, not summaries
		}
		var row results.TrialRow
		row.ClearMetrics()
		row.SetMetric(name, 7)
		c, ok := Lookup(name)
		if got := c.Value(&row); !ok || got != 7 || len(row.Extra) != 0 {
			t.Errorf("%s: SetMetric(7) reads %v (known %v), extra %v", name, got, ok, row.Extra)
		}
	}
	for _, name := range []string{"val_loss", "val_metric", "examples_per_s", "tokens_per_s", "ms_per_step",
		"optimizer_state_bytes", "adapter_bytes", "forward_ms_unmerged", "forward_ms_merged", "merge_error",
		"peak_mem_bytes", "train_seconds"} {
		if !IsColumn(name) {
			t.Errorf("%s is not in the column registry", name)
		}
	}
	var row results.TrialRow
	row.ClearMetrics()
	if v := Rank.Value(&row); !math.IsNaN(v) {
		t.Errorf("rank of a rank-less trial = %v, want NaN", v)
	}
	row.Params = map[string]any{"lr": 0.01, "batch": int64(8), "optimizer": "adamw"}
	for name, want := range map[string]float64{"lr": 0.01, "batch": 8, "optimizer": math.NaN()} {
		c, _ := Lookup(name)
		if got := c.Value(&row); !(got == want || math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("hyperparameter %s = %v, want %v", name, got, want)
		}
	}
}

func TestIntruderCountTolerance(t *testing.T) {
	row := &results.TrialRow{Intruders: []results.IntruderCount{{Epsilon: 0.1 * 3, Count: 4}}}
	if n, ok := IntruderCount(row, 0.3); !ok || n != 4 {
		t.Errorf("IntruderCount(ε = 0.1·3, 0.3) = %d, %v; want 4, true", n, ok)
	}
	if _, ok := IntruderCount(row, 0.31); ok {
		t.Error("IntruderCount at 0.31 found 0.3")
	}
}

func TestGroupAndSettings(t *testing.T) {
	rows := []*results.TrialRow{
		{TrialID: "a", Task: "t", Method: "lora", Rank: 8, Seed: 0, Config: `{"seed":0,"method_options":{"alpha":16},"train":{"lr":0.001}}`},
		{TrialID: "b", Task: "t", Method: "lora", Rank: 8, Seed: 1, Config: `{"seed":1,"method_options":{"alpha":16},"train":{"lr":0.001}}`},
		{TrialID: "c", Task: "t", Method: "lora", Rank: 8, Seed: 0, Config: `{"seed":0,"method_options":{"alpha":16},"train":{"lr":0.0001}}`},
		{TrialID: "d", Task: "t", Method: "full", Seed: 0, Config: `{"seed":0,"train":{"lr":0.0001}}`},
		{TrialID: "e", Task: "t", Method: "full", Seed: 0, Config: `{`},
	}
	cs, err := Group(rows)
	if err == nil {
		t.Error("a config that does not parse: no error")
	}
	if len(cs) != 4 || len(cs[0].Trials) != 2 || cs[0].Alpha != 16 || !math.IsNaN(cs[2].Alpha) || cs[2].Ranked() {
		t.Fatalf("groups: %+v", cs)
	}
	SetSettings(cs, SlotRank)
	if want := []string{"train.lr=0.001"}; !slices.Equal(cs[0].Settings, want) {
		t.Errorf("settings %q, want %q", cs[0].Settings, want)
	}
	merged, points := Curves(cs[:2], "lr")
	if len(merged) != 1 || len(points[merged[0]]) != 2 || len(merged[0].Trials) != 3 {
		t.Errorf("curves: %d merged, %d points", len(merged), len(points[merged[0]]))
	}
}
