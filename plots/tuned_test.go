package plots

import (
	"strings"
	"testing"

	"peftbench/results"
)

// TestTunedSection: the report's tuned section shows each group's chosen
// values, validation score and test mean with its interval, and why a
// group has no choice; a plain sweep has no such section.
func TestTunedSection(t *testing.T) {
	dir := t.TempDir()
	if got := tunedSection(&Data{Dir: dir}); got != "" {
		t.Fatalf("plain sweep: %q", got)
	}
	score := 0.875
	rec := &results.TuneRecord{Sweep: "s", Metric: "val_metric", Direction: "max", Axes: []string{"lr"},
		TuneSeeds: []int64{0}, TestSeeds: []int64{1, 2, 3},
		Groups: []results.TuneGroup{
			{Label: "lora r8 toy", Method: "lora", Rank: 8, Task: "toy", Chosen: 1,
				Points:     []results.TunePoint{{Values: map[string]any{"lr": 0.001}}, {Values: map[string]any{"lr": 0.03}, Score: &score}},
				TestTrials: []string{"a", "b", "c"}},
			{Label: "full toy", Method: "full", Task: "toy", Chosen: -1, Note: "no test trials: every point diverged",
				Points: []results.TunePoint{{Values: map[string]any{"lr": 0.1}}}},
		}}
	if err := results.WriteTune(dir, rec); err != nil {
		t.Fatal(err)
	}
	d := &Data{Dir: dir}
	for i, id := range []string{"a", "b", "c"} {
		r := results.TrialRow{TrialID: id, Task: "toy", Status: results.StatusOK}
		r.ClearMetrics()
		r.TargetMetric = 0.6 + 0.1*float64(i)
		d.Trials = append(d.Trials, r)
	}
	got := string(tunedSection(d))
	for _, want := range []string{"Tuned comparison", "<h3>Task toy</h3>", "<td>0.03</td>", "<td>0.875</td>", "<td>0.7</td>", "[0.4516, 0.9484]", "<td>3/3</td>",
		"no test trials: every point diverged", "<td>0/0</td>"} {
		if !strings.Contains(got, want) {
			t.Errorf("tuned section lacks %q:\n%s", want, got)
		}
	}
}
