package results

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// column returns the named column of tbl as one array, failing the test
// when it is absent or split into several chunks.
func column(t *testing.T, tbl arrow.Table, name string) arrow.Array {
	t.Helper()
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("no column %q in %v", name, tbl.Schema())
	}
	chunks := tbl.Column(idx[0]).Data().Chunks()
	if len(chunks) != 1 {
		t.Fatalf("column %q has %d chunks", name, len(chunks))
	}
	return chunks[0]
}

// TestArrowReadsWhatParquetGoWrote is the independence check: tables
// written by parquet-go are read by Apache Arrow's Parquet reader, and the
// values (nulls, NaN, the extra map, intruder lists, timestamps) match the
// rows that went in.
func TestArrowReadsWhatParquetGoWrote(t *testing.T) {
	dir := t.TempDir()
	writeSweep(t, dir, []int{1, 0})
	if err := Compact(dir); err != nil {
		t.Fatal(err)
	}
	want := []*Shard{sampleShard("t09", 0, true), sampleShard("t08", 1, false)}

	tbl, err := ReadTrialsArrow(filepath.Join(dir, TrialsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != 2 {
		t.Fatalf("%d rows, want 2", tbl.NumRows())
	}
	ids := column(t, tbl, "trial_id").(*array.String)
	loss := column(t, tbl, "target_loss").(*array.Float64)
	retain := column(t, tbl, "retain_metric_after").(*array.Float64)
	forget := column(t, tbl, "forgetting").(*array.Float64)
	effRank := column(t, tbl, "effective_rank").(*array.Float64)
	rank := column(t, tbl, "rank").(*array.Int64)
	started := column(t, tbl, "started_at").(*array.Timestamp)
	divStep := column(t, tbl, "diverged_step").(*array.Int64)
	for i, s := range want {
		tr := s.Trial
		if ids.Value(i) != tr.TrialID || rank.Value(i) != tr.Rank {
			t.Errorf("row %d: id %s rank %d, want %s %d", i, ids.Value(i), rank.Value(i), tr.TrialID, tr.Rank)
		}
		if loss.IsNull(i) || loss.Value(i) != tr.TargetLoss {
			t.Errorf("row %d: target_loss %v, want %v", i, loss.Value(i), tr.TargetLoss)
		}
		if !retain.IsNull(i) || !divStep.IsNull(i) {
			t.Errorf("row %d: absent retain_metric_after / diverged_step not null", i)
		}
		if !math.IsInf(forget.Value(i), 1) {
			t.Errorf("row %d: forgetting %v, want +Inf", i, forget.Value(i))
		}
		if effRank.IsNull(i) != (tr.EffectiveRank == 0 || math.IsNaN(tr.EffectiveRank)) {
			t.Errorf("row %d: effective_rank null = %v", i, effRank.IsNull(i))
		}
		unit := started.DataType().(*arrow.TimestampType).Unit
		if got := started.Value(i).ToTime(unit); !got.Equal(tr.StartedAt) {
			t.Errorf("row %d: started_at %v, want %v", i, got, tr.StartedAt)
		}
	}

	// The fields issue 17 added: null error and tokens_per_s, typed
	// efficiency columns, and the hyperparameter columns from the config.
	errCol := column(t, tbl, "error").(*array.String)
	phase := column(t, tbl, "phase").(*array.String)
	mname := column(t, tbl, "target_metric_name").(*array.String)
	tokens := column(t, tbl, "tokens_per_s").(*array.Float64)
	optBytes := column(t, tbl, "optimizer_state_bytes").(*array.Int64)
	valMetric := column(t, tbl, "val_metric").(*array.Float64)
	lr := column(t, tbl, "lr").(*array.Float64)
	batch := column(t, tbl, "batch").(*array.Int64)
	alpha := column(t, tbl, "alpha").(*array.Int64)
	dropout := column(t, tbl, "dropout").(*array.Float64)
	targets := column(t, tbl, "targets").(*array.String)
	trainSteps := column(t, tbl, "train_steps").(*array.Int64)
	hidden := column(t, tbl, "task_hidden").(*array.Int64)
	for i, s := range want {
		tr := s.Trial
		if !errCol.IsNull(i) || !tokens.IsNull(i) || phase.Value(i) != "search" || mname.Value(i) != "accuracy" {
			t.Errorf("row %d: error null %v, tokens_per_s null %v, phase %q, target_metric_name %q",
				i, errCol.IsNull(i), tokens.IsNull(i), phase.Value(i), mname.Value(i))
		}
		if optBytes.Value(i) != 4096 || valMetric.Value(i) != 0.85 {
			t.Errorf("row %d: optimizer_state_bytes %d, val_metric %v", i, optBytes.Value(i), valMetric.Value(i))
		}
		p := tr.Params
		if lr.Value(i) != p["lr"] || batch.Value(i) != p["batch"] || alpha.Value(i) != p["alpha"] ||
			dropout.Value(i) != p["dropout"] || targets.Value(i) != p["targets"] ||
			trainSteps.Value(i) != p["train_steps"] || hidden.Value(i) != p["task_hidden"] {
			t.Errorf("row %d: lr %v batch %v alpha %v dropout %v targets %v train_steps %v task_hidden %v, want %v",
				i, lr.Value(i), batch.Value(i), alpha.Value(i), dropout.Value(i), targets.Value(i),
				trainSteps.Value(i), hidden.Value(i), p)
		}
	}

	// extra: map<string, double>, keys sorted.
	extra := column(t, tbl, "extra").(*array.Map)
	keys, items := extra.Keys().(*array.String), extra.Items().(*array.Float64)
	for i, s := range want {
		lo, hi := extra.ValueOffsets(i)
		got := map[string]float64{}
		for j := lo; j < hi; j++ {
			got[keys.Value(int(j))] = items.Value(int(j))
		}
		if len(got) != len(s.Trial.Extra) {
			t.Errorf("row %d: extra %v, want %v", i, got, s.Trial.Extra)
		}
		for k, v := range s.Trial.Extra {
			if got[k] != v {
				t.Errorf("row %d: extra[%s] = %v, want %v", i, k, got[k], v)
			}
		}
	}

	// intruders: list<struct<epsilon double, count int64>>.
	intr := column(t, tbl, "intruders").(*array.List)
	st := intr.ListValues().(*array.Struct)
	eps, cnt := st.Field(0).(*array.Float64), st.Field(1).(*array.Int64)
	for i, s := range want {
		lo, hi := intr.ValueOffsets(i)
		if int(hi-lo) != len(s.Trial.Intruders) {
			t.Fatalf("row %d: %d intruder counts, want %d", i, hi-lo, len(s.Trial.Intruders))
		}
		for j, c := range s.Trial.Intruders {
			if eps.Value(int(lo)+j) != c.Epsilon || cnt.Value(int(lo)+j) != c.Count {
				t.Errorf("row %d: intruders[%d] = {%v %v}, want %+v", i, j, eps.Value(int(lo)+j), cnt.Value(int(lo)+j), c)
			}
		}
	}

	steps, err := ReadArrow(filepath.Join(dir, StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer steps.Release()
	vals := column(t, steps, "value").(*array.Float64)
	stepCol := column(t, steps, "step").(*array.Int64)
	if n := steps.NumRows(); n != 14 || stepCol.Value(0) != 1 || !math.IsNaN(vals.Value(6)) || vals.IsNull(6) {
		t.Errorf("steps through Arrow: %d rows, first step %d, row 6 value %v", n, stepCol.Value(0), vals.Value(6))
	}

	spectra, err := ReadArrow(filepath.Join(dir, SpectraFile))
	if err != nil {
		t.Fatal(err)
	}
	defer spectra.Release()
	flags := column(t, spectra, "intruder").(*array.List)
	bools := flags.ListValues().(*array.Boolean)
	for i, r := range want[0].Spectra {
		lo, _ := flags.ValueOffsets(i)
		for j, f := range r.Intruder {
			if bools.Value(int(lo)+j) != f {
				t.Errorf("spectra row %d: intruder[%d] = %v, want %v", i, j, !f, f)
			}
		}
	}
	if got := column(t, spectra, "sigma_tuned").(*array.Float64).Value(2); got != want[0].Spectra[2].SigmaTuned {
		t.Errorf("sigma_tuned[2] = %v, want %v", got, want[0].Spectra[2].SigmaTuned)
	}

	// Shards (snappy, not zstd) read through Arrow too.
	shard, err := ReadArrow(filepath.Join(ShardDir(dir, "t09"), shardTrialFile))
	if err != nil {
		t.Fatal(err)
	}
	defer shard.Release()
	if got := column(t, shard, "trial_id").(*array.String).Value(0); shard.NumRows() != 1 || got != "t09" {
		t.Errorf("shard through Arrow: %d rows, trial_id %q", shard.NumRows(), got)
	}
}
