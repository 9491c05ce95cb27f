package runner

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"peftbench/results"
	"peftbench/sweeps"
)

// namedToy is toy with a name for its target metric, as Builtin has.
type namedToy struct{ trainerFunc }

func (namedToy) TargetMetricName(t sweeps.Trial) string { return "toy-" + t.Method }

// TestRowTargetMetricNameAndEfficiency: a trainer that names its target
// metric fills target_metric_name (one that does not leaves it empty), the
// efficiency summaries land in their typed columns, not in extra, and the
// hyperparameters are columns of trials.parquet.
func TestRowTargetMetricNameAndEfficiency(t *testing.T) {
	for _, tc := range []struct {
		name string
		tr   Trainer
		want func(sweeps.Trial) string
	}{
		{"named", namedToy{trainerFunc(func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
			r.Summary("examples_per_s", 100)
			r.Summary("adapter_bytes", 2048)
			return toy(ctx, t, dir, r)
		})}, func(t sweeps.Trial) string { return "toy-" + t.Method }},
		{"unnamed", trainerFunc(toy), func(sweeps.Trial) string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := testPlan("named", 3)
			sum, err := Run(context.Background(), plan, testOptions(t, tc.tr))
			if err != nil {
				t.Fatal(err)
			}
			rows, err := results.ReadTrials(filepath.Join(sum.Dir, results.TrialsFile))
			if err != nil {
				t.Fatal(err)
			}
			for i, row := range rows {
				tr := plan.Trials[i]
				if got := row.TargetMetricName; got != tc.want(tr) {
					t.Errorf("row %d: target_metric_name %q, want %q", i, got, tc.want(tr))
				}
				named := tc.name == "named"
				if named && (row.ExamplesPerS != 100 || row.AdapterBytes != 2048 || row.Extra["adapter_bytes"] != 0) ||
					!named && (!math.IsNaN(row.ExamplesPerS) || !math.IsNaN(row.AdapterBytes)) {
					t.Errorf("row %d: examples_per_s %v adapter_bytes %v extra %v", i, row.ExamplesPerS, row.AdapterBytes, row.Extra)
				}
				if !math.IsNaN(row.MergeError) || !math.IsNaN(row.ValLoss) {
					t.Errorf("row %d: merge_error %v val_loss %v, want NaN (not reported)", i, row.MergeError, row.ValLoss)
				}
				// alpha is a float option, but every value is integral: an
				// int64 column (results/doc.go says why).
				if row.Params["lr"] != 1e-3 || row.Params["alpha"] != int64(2*tr.Rank) || row.Params["train_steps"] != int64(5) {
					t.Errorf("row %d: params %v", i, row.Params)
				}
			}
		})
	}
}
