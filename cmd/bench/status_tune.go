package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"peftbench/results"
)

// tuneStatus is where a tune sweep ([protocol] kind = "tune") stands, for
// bench status: its test trials are unknown until its search ends, so the
// trial count of a sweep in its search phase is the search's.
type tuneStatus struct {
	Phase    string `json:"phase"` // "search" (no choice yet) or "test"
	Groups   int    `json:"groups,omitempty"`
	Chosen   int    `json:"chosen"`    // groups with a choice and test trials
	Waiting  int    `json:"waiting"`   // groups whose search trials did not all end; a rerun retries them
	NoChoice int    `json:"no_choice"` // groups none of whose points competed (all diverged)
	Note     string `json:"note"`
}

// trialPhase is the part of a manifest's trial that tells a tune sweep.
type trialPhase struct {
	Phase string `json:"phase"`
}

// readTuneStatus is the tune status of the sweep in dir, nil for a plain
// sweep.
func readTuneStatus(dir string, m *results.Manifest) *tuneStatus {
	rec, err := results.ReadTune(dir)
	if err != nil {
		var trials []trialPhase
		if json.Unmarshal(m.Trials, &trials) != nil || !slices.ContainsFunc(trials, func(t trialPhase) bool { return t.Phase == "search" }) {
			return nil
		}
		return &tuneStatus{Phase: "search", Note: "search phase: the trials counted are the search trials; " +
			"each configuration group adds its test-seed trials once the search ends and its point is chosen"}
	}
	ts := &tuneStatus{Phase: "test", Groups: len(rec.Groups)}
	for _, g := range rec.Groups {
		switch {
		case g.ChosenPoint() != nil:
			ts.Chosen++
		case strings.HasPrefix(g.Note, "waiting"):
			ts.Waiting++
		default:
			ts.NoChoice++
		}
	}
	ts.Note = fmt.Sprintf("test phase: %d of %d groups chosen on %s (bench best %s)", ts.Chosen, ts.Groups, rec.Metric, dir)
	if ts.Waiting > 0 {
		ts.Note += fmt.Sprintf("; %d waiting for failed search trials (rerun the sweep)", ts.Waiting)
	}
	if ts.NoChoice > 0 {
		ts.Note += fmt.Sprintf("; %d with no test trials (no point competed)", ts.NoChoice)
	}
	return ts
}
