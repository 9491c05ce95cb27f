package tracker_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"peftbench/results"
	"peftbench/tracker"
)

// mlflowExport exports the fixture as an MLflow store in a fresh folder
// and returns the store's root (…/mlruns) with the rows it came from.
func mlflowExport(t *testing.T) (string, []results.TrialRow, map[string][]results.StepRow, map[string]results.Annotation) {
	t.Helper()
	dir := resultsFolder(t)
	trials, err := results.ReadTrials(filepath.Join(dir, results.TrialsFile))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := results.ReadSteps(filepath.Join(dir, results.StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	stepsOf := map[string][]results.StepRow{}
	for _, s := range steps {
		stepsOf[s.TrialID] = append(stepsOf[s.TrialID], s)
	}
	notes, err := results.ReadAnnotations(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := tracker.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := tracker.WriteMLflow(out, []*tracker.Sweep{s}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(out, "mlruns"), trials, stepsOf, notes
}

// The keys of meta.yaml files, from the format facts and MLflow's
// file_store.py (yaml.safe_dump sorts them): the test's own copy, not the
// exporter's.
var (
	experimentKeys = []string{"artifact_location", "creation_time", "experiment_id", "last_update_time", "lifecycle_stage", "name"}
	runKeys        = []string{"artifact_uri", "end_time", "entry_point_name", "experiment_id", "lifecycle_stage", "run_id",
		"run_name", "run_uuid", "source_name", "source_type", "source_version", "start_time", "status", "tags", "user_id"}
)

// metaKeys reads a meta.yaml's keys in order and its values as written.
func metaKeys(t *testing.T, path string) ([]string, map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	vals := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("%s: line %q is not 'key: value'", path, line)
		}
		keys = append(keys, k)
		vals[k] = strings.Trim(v, "'")
	}
	return keys, vals
}

// TestMLflowLayout walks the store and holds it to the layout of the
// format facts (reference/tracker-formats.md) and MLflow's file_store.py:
// mlruns/.trash/, mlruns/0/meta.yaml (Default), one experiment per sweep,
// in it runs <run_id>/{meta.yaml, metrics/, params/, tags/, artifacts/}
// and nothing else; meta.yaml's keys exactly and in order; every metric
// line "timestamp value step"; params and tags without a trailing
// newline; a parent run per configuration, each child's
// mlflow.parentRunId naming it; every param, step and final metric equal
// to trials.parquet and steps.parquet.
func TestMLflowLayout(t *testing.T) {
	root, trials, stepsOf, notes := mlflowExport(t)
	if fi, err := os.Stat(filepath.Join(root, ".trash")); err != nil || !fi.IsDir() {
		t.Errorf("no mlruns/.trash folder: %v", err)
	}
	runDirs := map[string]string{} // run id → experiment id
	exps := map[string]map[string]string{}
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == ".trash" {
			continue
		}
		if !e.IsDir() || !regexp.MustCompile(`^[0-9]+$`).MatchString(e.Name()) {
			t.Errorf("mlruns/%s: not an experiment folder (a decimal ID)", e.Name())
			continue
		}
		keys, vals := metaKeys(t, filepath.Join(root, e.Name(), "meta.yaml"))
		if !slices.Equal(keys, experimentKeys) {
			t.Errorf("mlruns/%s/meta.yaml: keys %v, want %v", e.Name(), keys, experimentKeys)
		}
		if vals["experiment_id"] != e.Name() || vals["lifecycle_stage"] != "active" ||
			vals["artifact_location"] != "file://"+filepath.ToSlash(filepath.Join(root, e.Name())) {
			t.Errorf("mlruns/%s/meta.yaml: %v", e.Name(), vals)
		}
		exps[e.Name()] = vals
		sub, _ := os.ReadDir(filepath.Join(root, e.Name()))
		for _, r := range sub {
			switch {
			case r.Name() == "meta.yaml":
			case r.IsDir() && regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(r.Name()):
				runDirs[r.Name()] = e.Name()
			default:
				t.Errorf("mlruns/%s/%s: neither meta.yaml nor a run folder", e.Name(), r.Name())
			}
		}
	}
	if exps["0"]["name"] != "Default" {
		t.Errorf("experiment 0: %v, want the Default experiment", exps["0"])
	}
	if len(exps) != 2 {
		t.Errorf("%d experiments, want Default and the sweep's", len(exps))
	}

	metricLine := regexp.MustCompile(`^(-?[0-9]+) (\S+) (-?[0-9]+)$`)
	type run struct {
		exp     string
		meta    map[string]string
		params  map[string]string
		tags    map[string]string
		metrics map[string][][3]string
		files   []string
	}
	runs := map[string]*run{}
	for id, exp := range runDirs {
		dir := filepath.Join(root, exp, id)
		r := &run{exp: exp, params: map[string]string{}, tags: map[string]string{}, metrics: map[string][][3]string{}}
		runs[id] = r
		var keys []string
		keys, r.meta = metaKeys(t, filepath.Join(dir, "meta.yaml"))
		if !slices.Equal(keys, runKeys) {
			t.Errorf("run %s meta.yaml: keys %v, want %v", id, keys, runKeys)
		}
		if r.meta["run_id"] != id || r.meta["run_uuid"] != id || r.meta["experiment_id"] != exp ||
			r.meta["source_type"] != "4" || r.meta["tags"] != "[]" || r.meta["lifecycle_stage"] != "active" ||
			r.meta["artifact_uri"] != "file://"+filepath.ToSlash(filepath.Join(dir, "artifacts")) {
			t.Errorf("run %s meta.yaml: %v", id, r.meta)
		}
		for _, sub := range []string{"metrics", "params", "tags", "artifacts"} {
			if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
				t.Errorf("run %s: no %s/ folder", id, sub)
			}
		}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Error(err)
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			rel = filepath.ToSlash(rel)
			if d.IsDir() {
				return nil
			}
			kind, key, _ := strings.Cut(rel, "/")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			switch kind {
			case "meta.yaml":
			case "params", "tags":
				if bytes.HasSuffix(b, []byte("\n")) && !strings.Contains(strings.TrimSuffix(string(b), "\n"), "\n") {
					t.Errorf("run %s %s: a trailing newline (MLflow writes none)", id, rel)
				}
				if kind == "params" {
					r.params[key] = string(b)
				} else {
					r.tags[key] = string(b)
				}
			case "metrics":
				if !bytes.HasSuffix(b, []byte("\n")) {
					t.Errorf("run %s %s: last line without a newline", id, rel)
				}
				for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
					m := metricLine.FindStringSubmatch(line)
					if m == nil || len(strings.Fields(line)) != 3 {
						t.Errorf("run %s %s: line %q is not 'timestamp value step'", id, rel, line)
						continue
					}
					if _, err := strconv.ParseFloat(m[2], 64); err != nil {
						t.Errorf("run %s %s: value %q: %v", id, rel, m[2], err)
					}
					r.metrics[key] = append(r.metrics[key], [3]string{m[1], m[2], m[3]})
				}
			case "artifacts":
				r.files = append(r.files, rel)
			default:
				t.Errorf("run %s: %s is not part of an MLflow run", id, rel)
			}
			return nil
		})
	}

	// Children: one per trial, under the parent of its configuration.
	parentOf := map[string]string{} // config identity → parent run
	byTrial := map[string]*run{}
	for id, r := range runs {
		if tid := r.tags["peftbench.trial_id"]; tid != "" {
			byTrial[tid] = r
			if id != tracker.RunID("track", tid, "") {
				t.Errorf("trial %s: run ID %s, want the hash of the trial ID", tid, id)
			}
		}
	}
	for i := range trials {
		tr := &trials[i]
		name := "trial " + tr.TrialID + " (" + tr.Status + ")"
		r := byTrial[tr.TrialID]
		if r == nil {
			t.Errorf("%s: no run", name)
			continue
		}
		wantStatus := map[string]string{results.StatusOK: "3", results.StatusDiverged: "4", results.StatusFailed: "4"}[tr.Status]
		if r.meta["status"] != wantStatus || r.meta["start_time"] != strconv.FormatInt(tr.StartedAt.UnixMilli(), 10) ||
			r.meta["end_time"] != strconv.FormatInt(tr.EndedAt.UnixMilli(), 10) {
			t.Errorf("%s: meta %v, want status %s and its times", name, r.meta, wantStatus)
		}
		if r.tags["mlflow.runName"] != r.meta["run_name"] || r.tags["peftbench.status"] != tr.Status ||
			r.tags["peftbench.method"] != tr.Method || r.tags["peftbench.task"] != tr.Task || r.tags["peftbench.error"] != tr.Error {
			t.Errorf("%s: tags %v", name, r.tags)
		}
		// Params: every hyperparameter, as Python's str() would write it.
		wantHP := expectedHParams(tr)
		for k, w := range wantHP {
			g, ok := r.params[k]
			if !ok {
				t.Errorf("%s: param %s missing (trials.parquet: %v)", name, k, w)
			} else if err := sameParam(g, w); err != nil {
				t.Errorf("%s: param %s: %v", name, k, err)
			}
		}
		for k := range r.params {
			if _, ok := wantHP[k]; !ok {
				t.Errorf("%s: param %s is not a hyperparameter of trials.parquet", name, k)
			}
		}
		// Metrics: each step metric's history, then the finals.
		var last int64
		wantHist := map[string][]results.StepRow{}
		for _, s := range stepsOf[tr.TrialID] {
			wantHist[s.Split+"/"+s.Metric] = append(wantHist[s.Split+"/"+s.Metric], s)
			last = max(last, s.Step)
		}
		finals := expectedFinals(tr)
		for key, pts := range r.metrics {
			if w, ok := finals[key]; ok {
				if len(pts) != 1 || pts[0][2] != strconv.FormatInt(last, 10) || pts[0][0] != r.meta["end_time"] || !sameFloat(pts[0][1], w) {
					t.Errorf("%s: final metric %s = %v, want %v at step %d", name, key, pts, w, last)
				}
				continue
			}
			hist, ok := wantHist[key]
			if !ok {
				t.Errorf("%s: metric %s is neither a step metric nor a final one", name, key)
				continue
			}
			if len(pts) != len(hist) {
				t.Errorf("%s: metric %s has %d points, steps.parquet %d", name, key, len(pts), len(hist))
				continue
			}
			prevTS := int64(math.MinInt64)
			for j, h := range hist {
				ts, _ := strconv.ParseInt(pts[j][0], 10, 64)
				if pts[j][2] != strconv.FormatInt(h.Step, 10) || !sameFloat(pts[j][1], h.Value) || ts < prevTS ||
					ts < tr.StartedAt.UnixMilli() || ts > tr.EndedAt.UnixMilli() {
					t.Errorf("%s: metric %s point %d = %v, steps.parquet has step %d value %v", name, key, j, pts[j], h.Step, h.Value)
				}
				prevTS = ts
			}
		}
		for key := range wantHist {
			if _, ok := r.metrics[key]; !ok {
				t.Errorf("%s: no metric %s", name, key)
			}
		}
		for key := range finals {
			if _, ok := r.metrics[key]; !ok {
				t.Errorf("%s: no final metric %s", name, key)
			}
		}
		// Annotations.
		a := notes[tr.TrialID]
		for _, tag := range a.Tags {
			k := "peftbench.tag." + regexp.MustCompile(`[^A-Za-z0-9_\-. /]`).ReplaceAllString(tag, "_")
			if r.tags[k] != "true" {
				t.Errorf("%s: tag %q: no %s = true in %v", name, tag, k, r.tags)
			}
		}
		if r.tags["mlflow.note.content"] != a.Note {
			t.Errorf("%s: mlflow.note.content %q, note %q", name, r.tags["mlflow.note.content"], a.Note)
		}
		if !slices.Equal(r.files, []string{"artifacts/config.json"}) {
			t.Errorf("%s: artifacts %v, want the config", name, r.files)
		}
		// The parent.
		p := runs[r.tags["mlflow.parentRunId"]]
		if p == nil || p.exp != r.exp || p.tags["mlflow.parentRunId"] != "" || p.tags["peftbench.trial_id"] != "" {
			t.Errorf("%s: parent %q is not a parent run of its experiment", name, r.tags["mlflow.parentRunId"])
			continue
		}
		id := configIdentity(tr)
		if parentOf[id] == "" {
			for other, pid := range parentOf {
				if pid == r.tags["mlflow.parentRunId"] {
					t.Errorf("%s: parent %s is also configuration %s's", name, pid, other)
				}
			}
			parentOf[id] = r.tags["mlflow.parentRunId"]
		} else if parentOf[id] != r.tags["mlflow.parentRunId"] {
			t.Errorf("%s: parent %s, its other seed's is %s", name, r.tags["mlflow.parentRunId"], parentOf[id])
		}
		if _, ok := p.params["seed"]; ok || p.params["lr"] != r.params["lr"] {
			t.Errorf("%s: parent params %v: want the child's but the seed", name, p.params)
		}
	}
	if len(runs) != len(trials)+3 {
		t.Errorf("%d runs, want %d trials and 3 parents", len(runs), len(trials))
	}
	if len(parentOf) != 3 {
		t.Errorf("%d parents, want 3", len(parentOf))
	}
}

// sameFloat says whether s, a metric value as written, reads back as
// exactly want (NaN as NaN).
func sameFloat(s string, want float64) bool {
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && (f == want || math.IsNaN(f) && math.IsNaN(want))
}

// sameParam checks a param file's text against a typed hyperparameter.
func sameParam(g string, w any) error {
	ok := false
	switch x := w.(type) {
	case string:
		ok = g == x
	case bool:
		ok = g == map[bool]string{true: "True", false: "False"}[x]
	case int64:
		ok = g == strconv.FormatInt(x, 10)
	case float64:
		ok = sameFloat(g, x) && strings.ContainsAny(g, ".en") // Python's str(float) always shows it is one
	}
	if !ok {
		return fmt.Errorf("%q, want %v (%T)", g, w, w)
	}
	return nil
}

// TestMLflowPythonReader: a Python reader that follows MLflow's
// FileStore (meta.yaml keys in order, metric lines of exactly three
// fields, params and tags without a newline, .trash) reads the store and
// finds the same runs, statuses, params and final metrics.
func TestMLflowPythonReader(t *testing.T) {
	root, trials, _, _ := mlflowExport(t)
	out, err := runPython(t, "mlruns_read.py", root)
	if err != nil {
		t.Fatalf("mlruns_read.py: %v", err)
	}
	var got struct {
		Experiments map[string]struct {
			Meta map[string]any `json:"meta"`
			Runs map[string]struct {
				Meta    map[string]any      `json:"meta"`
				Params  map[string]string   `json:"params"`
				Tags    map[string]string   `json:"tags"`
				Metrics map[string][][3]any `json:"metrics"`
			} `json:"runs"`
		} `json:"experiments"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	exp := got.Experiments[tracker.ExperimentID("track")]
	if exp.Meta["name"] != "track" || got.Experiments["0"].Meta["name"] != "Default" {
		t.Fatalf("experiments %v", got.Experiments)
	}
	for i := range trials {
		tr := &trials[i]
		r, ok := exp.Runs[tracker.RunID("track", tr.TrialID, "")]
		if !ok {
			t.Errorf("trial %s: no run", tr.TrialID)
			continue
		}
		wantStatus := map[string]float64{results.StatusOK: 3, results.StatusDiverged: 4, results.StatusFailed: 4}[tr.Status]
		if r.Meta["status"] != wantStatus || r.Meta["start_time"] != float64(tr.StartedAt.UnixMilli()) {
			t.Errorf("trial %s: meta %v", tr.TrialID, r.Meta)
		}
		for k, w := range expectedHParams(tr) {
			if err := sameParam(r.Params[k], w); err != nil {
				t.Errorf("trial %s: param %s: %v", tr.TrialID, k, err)
			}
		}
		for k, w := range expectedFinals(tr) {
			pts := r.Metrics[k]
			if len(pts) != 1 {
				t.Errorf("trial %s: metric %s: %v", tr.TrialID, k, pts)
				continue
			}
			f, err := strconv.ParseFloat(pts[0][1].(string), 64)
			if err != nil || !(f == w || math.IsNaN(f) && math.IsNaN(w)) {
				t.Errorf("trial %s: metric %s = %v, want %v", tr.TrialID, k, pts[0][1], w)
			}
		}
		if pid := r.Tags["mlflow.parentRunId"]; exp.Runs[pid].Tags["mlflow.runName"] == "" {
			t.Errorf("trial %s: parent %q not read", tr.TrialID, pid)
		}
	}
	if len(exp.Runs) != len(trials)+3 {
		t.Errorf("%d runs read, want %d", len(exp.Runs), len(trials)+3)
	}
}
