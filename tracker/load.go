package tracker

import (
	"cmp"
	"errors"
	"io/fs"
	"path/filepath"

	"peftbench/results"
)

// Sweep is one results folder as the exporters read it.
type Sweep struct {
	Name string // the sweep's name (manifest), else the folder's
	Dir  string
	// SweepFile is the path the sweep was read from ("" if unknown).
	SweepFile string
	// Trials are in plan order; Flat has one row per trial, in that order.
	Trials []results.TrialRow
	Flat   *results.FlatTable
	// Steps are each trial's step rows, in the order recorded.
	Steps map[string][]results.StepRow
	// Notes are the user's tags and notes by trial ID.
	Notes map[string]results.Annotation
	// nFixed is the number of Flat's columns before the hyperparameters.
	nFixed int
}

// Load reads the results folder dir: its compacted tables, or its trial
// shards where the tables are absent or behind them (note says so).
// Running trials (live logs without a shard) are not read.
func Load(dir string) (s *Sweep, note string, err error) {
	s = &Sweep{Dir: dir, Name: filepath.Base(filepath.Clean(dir)), Steps: map[string][]results.StepRow{}}
	if m, err := results.ReadManifest(dir); err == nil {
		s.Name, s.SweepFile = cmp.Or(m.Sweep, s.Name), m.SweepFile
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	var steps []results.StepRow
	if s.Trials, steps, note, err = results.ReadFinished(dir, true); err != nil {
		return nil, "", err
	}
	for _, r := range steps {
		s.Steps[r.TrialID] = append(s.Steps[r.TrialID], r)
	}
	if s.Name == "" && len(s.Trials) > 0 {
		s.Name = s.Trials[0].Sweep
	}
	if s.Notes, err = results.ReadAnnotations(dir); err != nil {
		return nil, "", err
	}
	s.Flat = results.Flatten(s.Trials)
	// Flatten appends the hyperparameter columns, derived from the
	// configs, after the fixed ones: the same rows without configs give
	// the count of the fixed ones.
	bare := make([]results.TrialRow, len(s.Trials))
	for i, t := range s.Trials {
		t.Config = ""
		bare[i] = t
	}
	s.nFixed = len(results.Flatten(bare).Columns)
	return s, note, nil
}

// Value is one named cell of a trial's flat row: int64, float64, string
// or bool (TypeJSON cells are their JSON text).
type Value struct {
	Name string
	V    any
}

// notMetric are the numeric fixed columns that are not final metrics:
// the plan position, and the ones that are hyperparameters.
var notMetric = map[string]bool{"plan_index": true, "rank": true, "seed": true, "mitigate_lambda": true}

// identityHParams are the fixed columns that are hyperparameters too.
var identityHParams = []string{"method", "rank", "task", "seed", "phase", "mitigate_lambda"}

// HParams returns trial i's hyperparameters: method, rank, task, seed
// (phase and mitigate_lambda where set), then every hyperparameter column
// of the flat table it has a value for, in the table's order.
func (s *Sweep) HParams(i int) []Value {
	row := s.Flat.Rows[i]
	var out []Value
	for _, name := range identityHParams {
		for j := range s.nFixed {
			if s.Flat.Columns[j].Name == name && row[j] != nil {
				out = append(out, Value{name, row[j]})
			}
		}
	}
	for j := s.nFixed; j < len(s.Flat.Columns); j++ {
		if row[j] != nil {
			out = append(out, Value{s.Flat.Columns[j].Name, row[j]})
		}
	}
	return out
}

// Metrics returns trial i's final metrics: every numeric fixed column of
// the flat table (target_metric, forgetting, the efficiency columns,
// intruders_<ε>, extra_<key>, …) it has a value for, as float64. A
// peak_mem_bytes of 0 is "not measured" (as the configs registry reads
// it), so it is left out.
func (s *Sweep) Metrics(i int) []Value {
	row := s.Flat.Rows[i]
	var out []Value
	for j := range s.nFixed {
		c := s.Flat.Columns[j]
		if notMetric[c.Name] || row[j] == nil {
			continue
		}
		switch v := row[j].(type) {
		case int64:
			if v == 0 && c.Name == "peak_mem_bytes" {
				continue
			}
			out = append(out, Value{c.Name, float64(v)})
		case float64:
			out = append(out, Value{c.Name, v})
		}
	}
	return out
}

// lastStep is trial i's last recorded step (its steps column without step
// rows): the end of the span over which the exports interpolate step
// times, which the tables do not keep.
func (s *Sweep) lastStep(i int) int64 {
	t := &s.Trials[i]
	steps := s.Steps[t.TrialID]
	if len(steps) == 0 {
		return t.Steps
	}
	last := steps[0].Step
	for _, r := range steps {
		last = max(last, r.Step)
	}
	return last
}
