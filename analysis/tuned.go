package analysis

import (
	"cmp"
	"slices"

	"peftbench/results"
)

// TunedRow is one configuration group of a tune sweep ([protocol] kind =
// "tune"): the values chosen on validation and the test results of the
// choice over the test seeds.
type TunedRow struct {
	Task   string         `json:"task"`
	Label  string         `json:"label"`
	Method string         `json:"method"`
	Rank   int            `json:"rank"`
	Values map[string]any `json:"values"` // the chosen point's tuned values; nil without a choice
	Points int            `json:"points"` // search points the choice was made among
	// Val is the chosen point's validation score (the protocol's metric,
	// mean over the tune seeds); nil without a choice.
	Val *float64 `json:"val"`
	// Test summarises TestMetric over the test trials that ended ok;
	// TestTrials is how many there are in all.
	Test       Summary `json:"test"`
	TestTrials int     `json:"test_trials"`
	Note       string  `json:"note,omitempty"` // why there is no choice
}

// Tuned returns a tune sweep's groups, by task (sorted) then in plan
// order, with the test results of each choice: value reads the test
// metric of a trial (NaN when absent), trials are the sweep's trials by
// ID. A test trial that did not end ok, or has not run, is left out of
// Test (Test.N says how many count).
func Tuned(rec *results.TuneRecord, trials map[string]*results.TrialRow, value func(*results.TrialRow) float64) []TunedRow {
	var rows []TunedRow
	for _, g := range rec.Groups {
		r := TunedRow{Task: g.Task, Label: g.Label, Method: g.Method, Rank: g.Rank, Points: len(g.Points), Note: g.Note,
			TestTrials: len(g.TestTrials)}
		if p := g.ChosenPoint(); p != nil {
			r.Values, r.Val = p.Values, p.Score
		}
		var xs []float64
		for _, id := range g.TestTrials {
			if t, ok := trials[id]; ok && t.Status == results.StatusOK {
				xs = append(xs, value(t))
			}
		}
		r.Test = Summarize(xs)
		rows = append(rows, r)
	}
	slices.SortStableFunc(rows, func(a, b TunedRow) int { return cmp.Compare(a.Task, b.Task) })
	return rows
}
