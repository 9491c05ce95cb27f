package results

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"peftbench/internal/atomicfile"
)

// TuneFile is the selection record of a tune sweep ([protocol] kind =
// "tune") in its results folder, written by the runner when the search
// phase ends and rewritten, identical for identical search results, on
// every rerun.
const TuneFile = "tune.json"

// TuneRecord is what tune.json holds: per configuration group the search
// points with their validation scores, the point chosen and its test
// trials. Nothing in it was measured on the test split.
type TuneRecord struct {
	Sweep     string      `json:"sweep"`
	Metric    string      `json:"metric"`    // the column points were ranked by
	Direction string      `json:"direction"` // "max" or "min"
	Axes      []string    `json:"axes"`      // the tuned axes
	TuneSeeds []int64     `json:"tune_seeds"`
	TestSeeds []int64     `json:"test_seeds"`
	Groups    []TuneGroup `json:"groups"`
}

// TuneGroup is one configuration group's selection.
type TuneGroup struct {
	Label  string      `json:"label"`
	Method string      `json:"method"`
	Rank   int         `json:"rank"`
	Task   string      `json:"task"`
	Points []TunePoint `json:"points"`
	// Chosen indexes Points; -1 when the group has no choice (Note says why).
	Chosen int `json:"chosen"`
	// Note says why a group has no choice yet or none at all.
	Note string `json:"note,omitempty"`
	// TestTrials are the chosen point's test trials, in test-seed order.
	TestTrials []string `json:"test_trials,omitempty"`
}

// TunePoint is one search point: its tuned values, its search trials (one
// per tune seed), the mean metric over them when it competed (Score), or
// why it did not (Reason).
type TunePoint struct {
	Values map[string]any `json:"values"`
	Trials []string       `json:"trials"`
	Score  *float64       `json:"score"` // nil when the point did not compete
	Reason string         `json:"reason,omitempty"`
}

// ChosenPoint is the group's chosen point, nil when it has none.
func (g *TuneGroup) ChosenPoint() *TunePoint {
	if g.Chosen < 0 || g.Chosen >= len(g.Points) {
		return nil
	}
	return &g.Points[g.Chosen]
}

// WriteTune writes dir/tune.json atomically.
func WriteTune(dir string, r *TuneRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("results: encode %s: %w", TuneFile, err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, TuneFile), append(b, '\n'))
}

// ReadTune reads dir/tune.json; the error wraps fs.ErrNotExist when the
// folder holds no tune sweep's selection (a plain sweep, or a tune sweep
// whose search has not ended).
func ReadTune(dir string) (*TuneRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, TuneFile))
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	var r TuneRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("results: %s: %w", filepath.Join(dir, TuneFile), err)
	}
	return &r, nil
}
