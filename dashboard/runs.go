package dashboard

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"

	"peftbench/configs"
	"peftbench/results"
)

// Column is one column of the run table: every flat column of
// results.Flatten (the columns `bench export-table` writes) but the
// config JSON, with its kind, type, and the column registry's label and
// direction.
type Column struct {
	Key       string `json:"key"`
	Kind      string `json:"kind"` // "param", "metric" or "meta"
	Type      string `json:"type"` // "number" or "string"
	Label     string `json:"label"`
	Direction string `json:"direction"` // "max", "min" or ""
}

// Row is one trial of the run table.
type Row struct {
	Sweep  int            `json:"sweep"`
	ID     string         `json:"id"`
	Status string         `json:"status"`
	Error  string         `json:"error"`
	Group  string         `json:"group"`
	Values map[string]any `json:"values"`
	Tags   []string       `json:"tags"`
	Note   string         `json:"note"`
	Live   *liveRef       `json:"live"`
}

type liveRef struct {
	Attempt int   `json:"attempt"`
	Step    int64 `json:"step"`
}

// trialState is a trial with its dashboard status.
type trialState struct {
	id       string
	row      results.TrialRow
	status   string
	complete bool
	live     *liveRef
}

// snapshot is a sweep folder's run table at one version.
type snapshot struct {
	version string
	name    string
	total   int
	counts  map[string]int
	running int
	columns []Column
	rows    []Row
	ids     map[string]bool
}

// metaColumns name a trial or its run rather than set it up or measure
// it; paramColumns are the identity columns that are settings.
var (
	metaColumns  = set("sweep", "trial_id", "plan_index", "phase", "status", "error", "attempts", "diverged_step", "target_metric_name", "started_at", "ended_at", "host")
	paramColumns = set("method", "rank", "task", "seed", "mitigate_lambda")
	fixedColumns = func() map[string]bool {
		m := map[string]bool{}
		for _, c := range results.Flatten(nil).Columns {
			m[c.Name] = true
		}
		return m
	}()
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// describe returns the dashboard column of a flat column.
func describe(fc results.FlatColumn) Column {
	c := Column{Key: fc.Name, Label: fc.Name, Type: "string"}
	switch fc.Type {
	case results.TypeInt64, results.TypeDouble:
		c.Type = "number"
	}
	var reg configs.Column
	known := false
	switch {
	case metaColumns[fc.Name]:
		c.Kind = "meta"
	case paramColumns[fc.Name]:
		c.Kind = "param"
	case fixedColumns[fc.Name]:
		c.Kind = "metric"
		reg, known = configs.Lookup(fc.Name)
	case strings.HasPrefix(fc.Name, "intruders_"):
		c.Kind = "metric"
		if e, err := strconv.ParseFloat(strings.TrimPrefix(fc.Name, "intruders_"), 64); err == nil {
			reg = configs.Intruders(e)
			known = reg.Known
		}
	case strings.HasPrefix(fc.Name, "extra_"):
		c.Kind = "metric"
		reg, known = configs.Extra(strings.TrimPrefix(fc.Name, "extra_"))
	default:
		c.Kind = "param" // a hyperparameter column (lr, alpha, task_<option>, …)
	}
	if reg.Label != "" {
		c.Label = reg.Label
	}
	if known {
		c.Direction = "min"
		if reg.Higher {
			c.Direction = "max"
		}
	}
	return c
}

// build makes the folder's run table for scan s from the refreshed caches.
func (f *folder) build(s *scan) (*snapshot, error) {
	trials := f.trialRows(s)
	rows := make([]results.TrialRow, len(trials))
	for i := range trials {
		rows[i] = trials[i].row
	}
	flat := results.Flatten(rows)
	snap := &snapshot{version: s.version, name: f.name, total: len(f.planned), counts: map[string]int{},
		rows: make([]Row, len(trials)), ids: make(map[string]bool, len(trials))}
	keep := make([]int, 0, len(flat.Columns))
	for j, fc := range flat.Columns {
		if fc.Name == "config" || fc.Name == "trial_id" {
			continue
		}
		keep = append(keep, j)
		snap.columns = append(snap.columns, describe(fc))
	}
	for i, ts := range trials {
		snap.counts[ts.status]++
		if ts.status == "running" {
			snap.running++
		}
		snap.ids[ts.id] = true
		a := f.ann[ts.id]
		r := Row{Sweep: f.index, ID: ts.id, Status: ts.status, Error: ts.row.Error, Group: groupKey(&ts.row),
			Values: make(map[string]any, len(keep)), Tags: a.Tags, Note: a.Note, Live: ts.live}
		if r.Tags == nil {
			r.Tags = []string{}
		}
		for k, j := range keep {
			c := snap.columns[k]
			if !ts.complete && c.Kind == "metric" {
				continue // a trial without results has no metrics, not zeros
			}
			if v := jsonCell(flat.Rows[i][j]); v != nil {
				r.Values[c.Key] = v
			}
		}
		snap.rows[i] = r
	}
	if snap.total < len(trials) {
		snap.total = len(trials)
	}
	return snap, nil
}

// groupKey is the opaque key of a trial's configuration across seeds
// (configs.Key): equal for two seeds of one configuration, also across
// sweeps.
func groupKey(r *results.TrialRow) string {
	k, _, _ := configs.Key(r)
	h := sha256.Sum256([]byte(k))
	return hex.EncodeToString(h[:6])
}

// jsonCell is a flat cell as a JSON value: nil (left out) for null and
// NaN, "+Inf"/"-Inf" for infinities, text for times and booleans.
func jsonCell(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case float64:
		switch {
		case math.IsNaN(x):
			return nil
		case math.IsInf(x, 1):
			return "+Inf"
		case math.IsInf(x, -1):
			return "-Inf"
		}
		return x
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		if x.IsZero() {
			return nil
		}
		return x.UTC().Format(time.RFC3339)
	}
	return v
}

// jsonFloat is a step or spectrum value as JSON: a number, or "NaN",
// "+Inf", "-Inf".
func jsonFloat(x float64) any {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "+Inf"
	case math.IsInf(x, -1):
		return "-Inf"
	}
	return x
}
