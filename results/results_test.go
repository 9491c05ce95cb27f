package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// sampleShard returns a shard with every kind of value: nulls, NaN step
// values, an extra map, intruder counts and spectra.
func sampleShard(id string, index int64, withSpectra bool) *Shard {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)
	tr := TrialRow{
		Sweep: "quick", TrialID: id, Method: "lora", Task: "regression",
		Rank: 4, Seed: 7 + index, Index: index,
		Config: fmt.Sprintf(`{"sweep":"quick","trial_id":%q,"index":%d,"method":"lora","rank":4,"task":"regression","seed":%d,`+
			`"method_options":{"alpha":16,"dropout":%g},"task_options":{"hidden":32,"protocol":"task-il"},`+
			`"train":{"steps":3,"batch":8,"lr":%g,"optimizer":"adamw","weight_decay":0,"targets":["fc1","fc2"]},"phase":"search"}`,
			id, index, 7+index, 0.05*float64(index+1), 1e-3*float64(index+1)),
		Phase: "search",
		Params: map[string]any{"train_steps": int64(3), "batch": int64(8), "lr": 1e-3 * float64(index+1), "optimizer": "adamw",
			"weight_decay": 0.0, "targets": `["fc1","fc2"]`, "alpha": int64(16), "dropout": 0.05 * float64(index+1),
			"task_hidden": int64(32), "task_protocol": "task-il"},
		TargetMetricName: "accuracy",
		Status:           StatusOK,
		Attempts:         1, TrainableParams: 512, TotalParams: 10000,
		Steps: 3, WallSeconds: 1.25, PeakMemBytes: 1 << 20,
		StartedAt: t0, EndedAt: t0.Add(1250 * time.Millisecond), Host: "box",
	}
	tr.ClearMetrics()
	tr.SetMetric("target_loss", 0.5+float64(index))
	tr.SetMetric("target_metric", 0.9)
	tr.SetMetric("retain_loss_before", 1.0)
	tr.SetMetric("retain_loss_after", 1.25)
	tr.SetMetric("forgetting", math.Inf(1))
	tr.SetMetric("refusal_retention", 0.75)
	tr.SetMetric("zzz_other", -2)
	tr.SetMetric("val_loss", 0.6)
	tr.SetMetric("val_metric", 0.85)
	tr.SetMetric("train_seconds", 1.5)
	tr.SetMetric("examples_per_s", 1234.5)
	tr.SetMetric("ms_per_step", 2.25)
	tr.SetMetric("optimizer_state_bytes", 4096)
	tr.SetMetric("adapter_bytes", 2200)
	tr.SetMetric("forward_ms_unmerged", 0.5)
	tr.SetMetric("forward_ms_merged", 0.25)
	tr.SetMetric("merge_error", 3e-7)
	// tokens_per_s stays NaN (not a text task): written as null.
	// retain_metric_before/after stay NaN: written as null.
	tr.MitigateLambda = math.NaN() // a plain trial: null
	s := &Shard{Trial: tr}
	for step := int64(3); step >= 1; step-- {
		s.Steps = append(s.Steps,
			StepRow{TrialID: id, Step: step, Split: "train", Metric: "loss", Value: 1 / float64(step)},
			StepRow{TrialID: id, Step: step, Split: "eval", Metric: "loss", Value: 2 / float64(step)})
	}
	s.Steps = append(s.Steps, StepRow{TrialID: id, Step: 4, Split: "train", Metric: "loss", Value: math.NaN()})
	if withSpectra {
		s.Trial.Intruders = []IntruderCount{{0.1, 0}, {0.5, 3}, {0.9, 7}}
		s.Trial.EffectiveRank = 3.5
		s.Trial.EnergyRank90 = 2
		s.Trial.MitigateLambda = 0.75
		for i := int64(0); i < 3; i++ {
			s.Spectra = append(s.Spectra, SpectrumRow{TrialID: id, Layer: "fc1", Index: i,
				SigmaBase: 3 - float64(i), SigmaTuned: 3.1 - float64(i), MaxCos: 0.3 * float64(i+1),
				Intruder: []bool{false, i == 0, true}})
		}
	}
	return s
}

// sameFloat compares with NaN equal to NaN, bit for bit otherwise.
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

func equalTrial(t *testing.T, got, want TrialRow) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := 0; i < gv.NumField(); i++ {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		switch w := w.(type) {
		case float64:
			if name == "EffectiveRank" || name == "EnergyRank90" {
				if w == 0 {
					w = math.NaN() // 0 means not filled in
				}
			}
			if !sameFloat(g.(float64), w) {
				t.Errorf("%s = %v, want %v", name, g, w)
			}
		case time.Time:
			if !g.(time.Time).Equal(w) {
				t.Errorf("%s = %v, want %v", name, g, w)
			}
		default:
			if !reflect.DeepEqual(g, w) {
				t.Errorf("%s = %#v, want %#v", name, g, w)
			}
		}
	}
}

func equalSteps(t *testing.T, got, want []StepRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d step rows, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.TrialID != w.TrialID || g.Step != w.Step || g.Split != w.Split || g.Metric != w.Metric || !sameFloat(g.Value, w.Value) {
			t.Errorf("step row %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestShardRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		shard   func() *Shard
		spectra int
	}{
		{"full", func() *Shard { return sampleShard("a1", 0, true) }, 3},
		{"no spectra", func() *Shard { return sampleShard("b2", 1, false) }, 0},
		{"zero row", func() *Shard { return &Shard{Trial: TrialRow{TrialID: "z", Status: StatusFailed, Error: "boom"}} }, 0},
		{"diverged", func() *Shard {
			s := sampleShard("d", 2, false)
			s.Trial.Status, s.Trial.DivergedStep = StatusDiverged, 0
			return s
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			want := tc.shard()
			if err := WriteShard(dir, want); err != nil {
				t.Fatal(err)
			}
			shards, err := ReadShards(dir)
			if err != nil {
				t.Fatal(err)
			}
			got := shards[want.Trial.TrialID]
			if len(shards) != 1 || got == nil {
				t.Fatalf("ReadShards = %v, want one shard %s", shards, want.Trial.TrialID)
			}
			equalTrial(t, got.Trial, want.Trial)
			equalSteps(t, got.Steps, want.Steps)
			if len(got.Spectra) != tc.spectra || !reflect.DeepEqual(got.Spectra, want.Spectra) && tc.spectra > 0 {
				t.Errorf("spectra = %+v, want %+v", got.Spectra, want.Spectra)
			}
		})
	}
}

func TestNullsOnDisk(t *testing.T) {
	// The null/NaN convention, checked at the record level: absent metrics
	// are null, an infinite one is a value, non-diverged trials have no
	// diverged_step.
	rec := toTrialRecord(&sampleShard("a", 0, false).Trial)
	if rec.RetainMetricBefore != nil || rec.RetainMetricAfter != nil || rec.EffectiveRank != nil || rec.DivergedStep != nil {
		t.Errorf("absent values not null: %+v", rec)
	}
	if rec.Forgetting == nil || !math.IsInf(*rec.Forgetting, 1) {
		t.Errorf("forgetting = %v, want +Inf", rec.Forgetting)
	}
}

func TestSetMetric(t *testing.T) {
	for _, tc := range []struct {
		name string
		get  func(*TrialRow) float64
	}{
		{"target_loss", func(r *TrialRow) float64 { return r.TargetLoss }},
		{"target_metric", func(r *TrialRow) float64 { return r.TargetMetric }},
		{"retain_loss_before", func(r *TrialRow) float64 { return r.RetainLossBefore }},
		{"retain_loss_after", func(r *TrialRow) float64 { return r.RetainLossAfter }},
		{"retain_metric_before", func(r *TrialRow) float64 { return r.RetainMetricBefore }},
		{"retain_metric_after", func(r *TrialRow) float64 { return r.RetainMetricAfter }},
		{"forgetting", func(r *TrialRow) float64 { return r.Forgetting }},
		{"trainable_params", func(r *TrialRow) float64 { return float64(r.TrainableParams) }},
		{"total_params", func(r *TrialRow) float64 { return float64(r.TotalParams) }},
		{"steps", func(r *TrialRow) float64 { return float64(r.Steps) }},
		{"peak_mem_bytes", func(r *TrialRow) float64 { return float64(r.PeakMemBytes) }},
		{"effective_rank", func(r *TrialRow) float64 { return r.EffectiveRank }},
		{"energy_rank_90", func(r *TrialRow) float64 { return r.EnergyRank90 }},
		{"refusal_retention", func(r *TrialRow) float64 { return r.Extra["refusal_retention"] }},
	} {
		var r TrialRow
		r.SetMetric(tc.name, 42)
		if got := tc.get(&r); got != 42 {
			t.Errorf("SetMetric(%q, 42): field = %v", tc.name, got)
		}
		if _, inExtra := r.Extra[tc.name]; inExtra != (tc.name == "refusal_retention") {
			t.Errorf("SetMetric(%q): in Extra = %v", tc.name, inExtra)
		}
	}
}

func TestIncompleteAndTempIgnored(t *testing.T) {
	dir := t.TempDir()
	if err := WriteShard(dir, sampleShard("done", 0, true)); err != nil {
		t.Fatal(err)
	}
	// A crash mid-write: a temp file next to a complete shard, and a shard
	// whose trial.parquet never landed.
	if err := os.WriteFile(filepath.Join(ShardDir(dir, "done"), tempPrefix+"trial.parquet-123"), []byte("PAR1 half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteShard(dir, sampleShard("half", 1, true)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ShardDir(dir, "half"), shardTrialFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(ShardDir(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A crash that made trial.parquet durable but not steps.parquet.
	if err := WriteShard(dir, sampleShard("nosteps", 2, true)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ShardDir(dir, "nosteps"), StepsFile)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"half", "empty", "nosteps", "absent"} {
		if _, err := ReadShard(dir, id); !errors.Is(err, ErrIncomplete) {
			t.Errorf("ReadShard(%s) error = %v, want ErrIncomplete", id, err)
		}
	}
	shards, err := ReadShards(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 1 || shards["done"] == nil {
		t.Errorf("ReadShards: got %d shards, want only \"done\"", len(shards))
	}
}

func TestDamagedShardNamesFile(t *testing.T) {
	for _, file := range []string{shardTrialFile, StepsFile, SpectraFile} {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteShard(dir, sampleShard("x", 0, true)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(ShardDir(dir, "x"), file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data[:len(data)/2], 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = ReadShards(dir)
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("ReadShards error = %v, want one naming %s", err, path)
			}
		})
	}
}

func TestWriteShardRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *Shard
	}{
		{"empty id", &Shard{}},
		{"path id", &Shard{Trial: TrialRow{TrialID: "../x"}}},
		{"temp id", &Shard{Trial: TrialRow{TrialID: tempPrefix + "x"}}},
		{"foreign step", &Shard{Trial: TrialRow{TrialID: "a"}, Steps: []StepRow{{TrialID: "b"}}}},
		{"foreign spectrum", &Shard{Trial: TrialRow{TrialID: "a"}, Spectra: []SpectrumRow{{TrialID: "b"}}}},
	} {
		if err := WriteShard(t.TempDir(), tc.s); err == nil {
			t.Errorf("%s: WriteShard succeeded", tc.name)
		}
	}
}

func writeSweep(t *testing.T, dir string, order []int) {
	t.Helper()
	for _, i := range order {
		if err := WriteShard(dir, sampleShard(fmt.Sprintf("t%02d", 9-i), int64(i), i%2 == 0)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCompact(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeSweep(t, a, []int{3, 0, 2, 1})
	writeSweep(t, b, []int{1, 2, 0, 3})
	if err := Compact(a); err != nil {
		t.Fatal(err)
	}
	first := readAll(t, a)
	if err := Compact(a); err != nil {
		t.Fatal(err)
	}
	if err := Compact(b); err != nil {
		t.Fatal(err)
	}
	for name, data := range readAll(t, a) {
		if !bytes.Equal(data, first[name]) {
			t.Errorf("%s: compacting twice changed the bytes", name)
		}
		if !bytes.Equal(data, readAll(t, b)[name]) {
			t.Errorf("%s: shards written in another order give other bytes", name)
		}
	}

	trials, err := ReadTrials(filepath.Join(a, TrialsFile))
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range trials {
		if tr.Index != int64(i) {
			t.Errorf("trial row %d has plan index %d", i, tr.Index)
		}
		equalTrial(t, tr, sampleShard(tr.TrialID, tr.Index, tr.Index%2 == 0).Trial)
	}
	if len(trials) != 4 {
		t.Fatalf("%d trial rows, want 4", len(trials))
	}
	steps, err := ReadSteps(filepath.Join(a, StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	var want []StepRow
	for _, tr := range trials {
		for step := int64(1); step <= 3; step++ {
			want = append(want,
				StepRow{tr.TrialID, step, "train", "loss", 1 / float64(step)},
				StepRow{tr.TrialID, step, "eval", "loss", 2 / float64(step)})
		}
		want = append(want, StepRow{tr.TrialID, 4, "train", "loss", math.NaN()})
	}
	equalSteps(t, steps, want)
	spectra, err := ReadSpectra(filepath.Join(a, SpectraFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(spectra) != 6 || spectra[0].TrialID != trials[0].TrialID || spectra[3].TrialID != trials[2].TrialID {
		t.Errorf("spectra rows out of plan order: %+v", spectra)
	}
}

func TestCompactEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := Compact(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{TrialsFile, StepsFile, SpectraFile} {
		tbl, err := ReadArrow(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if tbl.NumRows() != 0 || tbl.NumCols() == 0 {
			t.Errorf("%s: %d rows, %d columns; want 0 rows and the schema", name, tbl.NumRows(), tbl.NumCols())
		}
		tbl.Release()
	}
}

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, name := range []string{TrialsFile, StepsFile, SpectraFile} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		m[name] = data
	}
	return m
}

func TestManifestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "quick")
	want := &Manifest{
		Sweep: "quick", Description: "demo", SweepFile: "experiments/quick.toml",
		SweepSource: "name = \"quick\"\n", SourceHash: "sha256:ab",
		Trials:    json.RawMessage(`[{"id":"a1","method":"lora"}]`),
		GitCommit: "deadbeef", GoVersion: "go1.26", Host: "box", HarnessVersion: "0.1",
		Started: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		Ended:   time.Date(2025, 1, 2, 4, 4, 5, 6, time.UTC),
	}
	if err := WriteManifest(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var gt, wt any
	json.Unmarshal(got.Trials, &gt)
	json.Unmarshal(want.Trials, &wt)
	if !reflect.DeepEqual(gt, wt) {
		t.Errorf("trials = %s, want %s", got.Trials, want.Trials)
	}
	got.Trials, want.Trials = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("manifest = %+v, want %+v", got, want)
	}
	if _, err := ReadManifest(t.TempDir()); err == nil {
		t.Error("ReadManifest of a folder without one succeeded")
	}
}

func TestRewriteShard(t *testing.T) {
	dir := t.TempDir()
	first := sampleShard("r", 0, true)
	if err := WriteShard(dir, first); err != nil {
		t.Fatal(err)
	}
	second := sampleShard("r", 0, false)
	second.Trial.Status, second.Trial.Attempts = StatusFailed, 2
	second.Steps = second.Steps[:1]
	if err := WriteShard(dir, second); err != nil {
		t.Fatal(err)
	}
	got, err := ReadShard(dir, "r")
	if err != nil {
		t.Fatal(err)
	}
	equalTrial(t, got.Trial, second.Trial)
	equalSteps(t, got.Steps, second.Steps)
	if len(got.Spectra) != 0 {
		t.Errorf("%d spectra rows survived the rewrite", len(got.Spectra))
	}
	entries, err := os.ReadDir(ShardDir(dir, "r"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if isTemp(e.Name()) {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}

// TestTrialsOverOneReadBatch: a table of more trials than one read batch
// (1024) keeps every trial's own extra metrics and intruder counts. The
// reader once decoded each batch into the previous batch's maps and
// slices, so a 1630-trial nightly read the extras of one trial as
// another's (refusal_retention on an MNIST trial).
func TestTrialsOverOneReadBatch(t *testing.T) {
	const n = 2500
	rows := make([]TrialRow, n)
	for i := range rows {
		r := &rows[i]
		*r = sampleShard(fmt.Sprintf("t%04d", i), int64(i), false).Trial
		r.Extra = map[string]float64{"id": float64(i)}
		for k := range i % 4 { // maps of 1 to 4 keys: no two consecutive alike
			r.Extra[fmt.Sprintf("k%d", k)] = float64(i*10 + k)
		}
		all := []IntruderCount{{0.3, int64(i)}, {0.5, int64(i + 1)}, {0.7, int64(i + 2)}}
		r.Intruders = all[:i%3+1]
	}
	data, err := encodeTrials(rows, parquet.Compression(tableCodec))
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeTrials("trials.parquet", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d rows, want %d", len(got), n)
	}
	for i := range got {
		if !reflect.DeepEqual(got[i].Extra, rows[i].Extra) || !reflect.DeepEqual(got[i].Intruders, rows[i].Intruders) {
			t.Fatalf("row %d: extra %v intruders %v, want %v %v", i, got[i].Extra, got[i].Intruders, rows[i].Extra, rows[i].Intruders)
		}
	}
}
