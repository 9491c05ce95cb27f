package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"peftbench/results"
)

// exportFixture writes a compacted results folder of five trials: LoRA
// with two lrs and two alphas, full fine-tuning (no rank, no alpha) that
// failed with an error that needs CSV quoting, and a trial still without
// metrics; one analysed (intruders), one with an extra metric. It returns
// the folder and the rows written.
func exportFixture(t *testing.T) (string, []results.TrialRow) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "export")
	t0 := time.Date(2026, 2, 3, 4, 5, 6, 789000, time.UTC)
	type spec struct {
		method string
		rank   int64
		lr     float64
		alpha  float64
		status string
		err    string
		metric float64
	}
	specs := []spec{
		{"lora", 4, 0.001, 8, results.StatusOK, "", 0.5},
		{"lora", 4, 0.01, 8, results.StatusOK, "", 0.75},
		{"lora", 4, 0.001, 16.5, results.StatusOK, "", 0.25},
		{"full", 0, 0.01, 0, results.StatusFailed, "boom, \"quoted\"\nsecond line", math.NaN()},
		{"lora", 8, 0.01, 16, results.StatusOK, "", 0.875},
	}
	var rows []results.TrialRow
	for i, s := range specs {
		mo := fmt.Sprintf(`{"alpha":%g,"init":"gaussian"}`, s.alpha)
		if s.method == "full" {
			mo = `{}`
		}
		id := fmt.Sprintf("t%02d", i)
		cfg := fmt.Sprintf(`{"sweep":"export","trial_id":%q,"index":%d,"method":%q,"rank":%d,"task":"teacher-shift","seed":%d,`+
			`"method_options":%s,"task_options":{"hidden":32,"stages":1},"train":{"steps":20,"batch":16,"lr":%g,"optimizer":"adamw",`+
			`"weight_decay":0,"schedule":"constant","targets":["all-linear"]}}`, id, i, s.method, s.rank, i%2, mo, s.lr)
		r := results.TrialRow{
			Sweep: "export", TrialID: id, Index: int64(i), Method: s.method, Rank: s.rank, Task: "teacher-shift",
			Seed: int64(i % 2), Config: cfg, Status: s.status, Error: s.err, Attempts: 1,
			TrainableParams: 100 * (s.rank + 1), TotalParams: 5000, Steps: 20, WallSeconds: 1.5, PeakMemBytes: 1 << 20,
			StartedAt: t0.Add(time.Duration(i) * time.Second), EndedAt: t0.Add(time.Duration(i)*time.Second + 1500*time.Millisecond),
			Host: "box",
		}
		r.ClearMetrics()
		r.MitigateLambda = math.NaN()
		if s.status == results.StatusOK {
			r.TargetMetricName = "accuracy"
			r.SetMetric("target_metric", s.metric)
			r.SetMetric("target_loss", 1-s.metric)
			r.SetMetric("forgetting", 0.125*float64(i))
			r.SetMetric("examples_per_s", 1000+float64(i))
			r.SetMetric("adapter_bytes", float64(2000+i))
		}
		if i == 0 {
			r.Intruders = []results.IntruderCount{{Epsilon: 0.5, Count: 3}, {Epsilon: 0.9, Count: 7}}
			r.EffectiveRank = 2.5
		}
		if i == 1 {
			r.SetMetric("forgetting_ce", 0.375)
			r.SetMetric("forgetting", math.Inf(1))
		}
		if err := results.WriteShard(dir, &results.Shard{Trial: r}); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	if err := results.Compact(dir); err != nil {
		t.Fatal(err)
	}
	return dir, rows
}

// TestExportTableGolden checks bench export-table's CSV and JSON lines
// against golden files, and that the CSV parses back to the header and
// one record per trial, with the failed trial's error intact.
func TestExportTableGolden(t *testing.T) {
	dir, rows := exportFixture(t)
	for _, c := range []struct{ format, golden string }{{"csv", "export-table.csv"}, {"jsonl", "export-table.jsonl"}} {
		var out, errb bytes.Buffer
		if err := runExportTable([]string{dir, "--format", c.format}, &out, &errb); err != nil {
			t.Fatalf("%s: %v\n%s", c.format, err, errb.String())
		}
		checkGolden(t, c.golden, "bench export-table --format "+c.format, out.Bytes())

		// --out writes the same bytes to a file.
		file := filepath.Join(t.TempDir(), "out."+c.format)
		if err := runExportTable([]string{"--out", file, "--format", c.format, dir}, &bytes.Buffer{}, &errb); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, out.Bytes()) {
			t.Errorf("%s: --out wrote other bytes (%v)", c.format, err)
		}
	}

	var out bytes.Buffer
	if err := runExportTable([]string{dir}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(rows)+1 {
		t.Fatalf("%d CSV records, want a header and %d rows", len(recs), len(rows))
	}
	col := map[string]int{}
	for j, name := range recs[0] {
		col[name] = j
	}
	for _, name := range []string{"lr", "alpha", "init", "batch", "train_steps", "task_hidden", "targets",
		"rank", "error", "target_metric_name", "examples_per_s", "intruders_0.5", "extra_forgetting_ce"} {
		if _, ok := col[name]; !ok {
			t.Errorf("no column %s in %v", name, recs[0])
		}
	}
	failed := recs[4]
	if failed[col["error"]] != rows[3].Error || failed[col["rank"]] != "" || failed[col["alpha"]] != "" || failed[col["target_metric"]] != "" {
		t.Errorf("failed trial: error %q rank %q alpha %q target_metric %q", failed[col["error"]], failed[col["rank"]], failed[col["alpha"]], failed[col["target_metric"]])
	}
	if ok := recs[1]; ok[col["error"]] != "" || ok[col["lr"]] != "0.001" || ok[col["alpha"]] != "8" || ok[col["intruders_0.9"]] != "7" {
		t.Errorf("first trial: error %q lr %q alpha %q intruders_0.9 %q", ok[col["error"]], ok[col["lr"]], ok[col["alpha"]], ok[col["intruders_0.9"]])
	}
	if got := recs[2][col["forgetting"]]; got != "inf" {
		t.Errorf("forgetting +Inf written %q, want inf", got)
	}
}

// TestExportTableJSONLTypes: each JSON line is an object whose values
// have their column's JSON type, null for absent, and the rows follow the
// plan.
func TestExportTableJSONLTypes(t *testing.T) {
	dir, rows := exportFixture(t)
	objs := exportJSONL(t, dir, len(rows))
	for i, m := range objs {
		if m["trial_id"] != rows[i].TrialID {
			t.Errorf("line %d: trial %v, want %s", i, m["trial_id"], rows[i].TrialID)
		}
		lr, ok := m["lr"].(float64)
		if !ok || lr != rows[i].Params["lr"] && rows[i].Params != nil {
			t.Errorf("line %d: lr %#v", i, m["lr"])
		}
		if rows[i].Method == "full" && (m["rank"] != nil || m["alpha"] != nil || m["error"] != rows[i].Error) {
			t.Errorf("line %d: full: rank %v alpha %v error %v", i, m["rank"], m["alpha"], m["error"])
		}
		if rows[i].Method != "full" && (m["error"] != nil || m["alpha"] == nil) {
			t.Errorf("line %d: error %v alpha %v", i, m["error"], m["alpha"])
		}
	}
	if m := objs[1]; m["forgetting"] != nil {
		t.Errorf("forgetting +Inf in JSON: %v, want null", m["forgetting"])
	}
}

// exportJSONL runs bench export-table --format jsonl on dir and parses
// its lines, which must number n.
func exportJSONL(t *testing.T, dir string, n int) []map[string]any {
	t.Helper()
	var out bytes.Buffer
	if err := runExportTable([]string{dir, "--format", "jsonl"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
	objs := make([]map[string]any, n)
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &objs[i]); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
	}
	return objs
}

// TestExportTableAnnotations: a sweep's tags and notes (bench serve's
// annotations.json) become a tags and a note column, null for a trial
// without them; a sweep without annotations has neither column (the
// golden files). Planted bugs: the two columns swapped; one trial's
// annotation on every row.
func TestExportTableAnnotations(t *testing.T) {
	dir, rows := exportFixture(t)
	if _, err := results.UpdateAnnotation(dir, "t03", func(a *results.Annotation) {
		a.Tags = []string{"<script>", "bad-lr"}
		a.Note = "diverged, \"see\" log"
	}); err != nil {
		t.Fatal(err)
	}
	for i, m := range exportJSONL(t, dir, len(rows)) {
		wantTags, wantNote := any(nil), any(nil)
		if m["trial_id"] == "t03" {
			wantTags, wantNote = "<script>,bad-lr", `diverged, "see" log`
		}
		if _, ok := m["tags"]; !ok || m["tags"] != wantTags || m["note"] != wantNote {
			t.Errorf("line %d (%v): tags %#v note %#v, want %#v %#v", i, m["trial_id"], m["tags"], m["note"], wantTags, wantNote)
		}
	}
}

// TestExportTableUsage: wrong arguments are usage errors; a folder that
// is not one is an error naming it; shards are read before compaction.
func TestExportTableUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"a", "b"}, {"--format", "xml", "a"}} {
		err := runExportTable(args, &bytes.Buffer{}, &bytes.Buffer{})
		if exitStatus(err, false) != 2 {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	empty := t.TempDir()
	if err := runExportTable([]string{empty}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty folder: %v", err)
	}

	dir, _ := exportFixture(t)
	var compacted bytes.Buffer
	if err := runExportTable([]string{dir}, &compacted, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{results.TrialsFile, results.StepsFile, results.SpectraFile, results.ChecksumsFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	var fromShards, errb bytes.Buffer
	if err := runExportTable([]string{dir}, &fromShards, &errb); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromShards.Bytes(), compacted.Bytes()) || !strings.Contains(errb.String(), "shards") {
		t.Errorf("from shards: same bytes %v, note %q", bytes.Equal(fromShards.Bytes(), compacted.Bytes()), errb.String())
	}
}
