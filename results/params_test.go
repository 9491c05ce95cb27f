package results

import (
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"peftbench/sweeps"
)

// TestParamTable: the hyperparameter columns' names, types, order and
// values, from the configs of a table's trials.
func TestParamTable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		configs []string
		cols    []paramColumn
		vals    [][]any
	}{
		{"identity keys are not params",
			[]string{`{"sweep":"s","trial_id":"x","index":0,"method":"full","rank":0,"task":"t","seed":1,"phase":"test"}`},
			[]paramColumn{}, [][]any{{}}},
		{"train order, float train keys, steps prefixed",
			[]string{`{"train":{"weight_decay":0,"lr":1,"steps":10,"batch":8}}`},
			[]paramColumn{{"train_steps", "train.steps", TypeInt64}, {"batch", "train.batch", TypeInt64},
				{"lr", "train.lr", TypeDouble}, {"weight_decay", "train.weight_decay", TypeDouble}},
			[][]any{{int64(10), int64(8), 1.0, 0.0}}},
		{"ints and floats mix to double; absent is nil",
			[]string{`{"method_options":{"alpha":16}}`, `{"method_options":{"alpha":0.5,"init":"gaussian"}}`, `{}`},
			[]paramColumn{{"alpha", "method_options.alpha", TypeDouble}, {"init", "method_options.init", TypeString}},
			[][]any{{16.0, nil}, {0.5, "gaussian"}, {nil, nil}}},
		{"method option clashing with a fixed column or a train key",
			[]string{`{"method_options":{"rank":8,"lr":2,"steps":1},"train":{"lr":0.1}}`},
			[]paramColumn{{"lr", "train.lr", TypeDouble}, {"method_lr", "method_options.lr", TypeInt64},
				{"method_rank", "method_options.rank", TypeInt64}, {"method_steps", "method_options.steps", TypeInt64}},
			[][]any{{0.1, int64(2), int64(8), int64(1)}}},
		{"task options prefixed, bools, lists as JSON, mixed kinds as JSON",
			[]string{`{"task_options":{"hidden":32,"flag":true,"odd":"a"},"train":{"targets":["fc1", "fc2"]}}`,
				`{"task_options":{"hidden":64,"flag":false,"odd":3}}`},
			[]paramColumn{{"targets", "train.targets", TypeJSON}, {"task_flag", "task_options.flag", TypeBool},
				{"task_hidden", "task_options.hidden", TypeInt64}, {"task_odd", "task_options.odd", TypeJSON}},
			[][]any{{`["fc1","fc2"]`, true, int64(32), `"a"`}, {nil, false, int64(64), "3"}}},
		{"mitigation without its lambda; other keys; null values",
			[]string{`{"mitigate_intruders":{"lambda":0.5,"threshold_epsilon":1,"top_k":10},"status":"x","budget":{"n":4},"nothing":null}`},
			[]paramColumn{{"mitigate_threshold_epsilon", "mitigate_intruders.threshold_epsilon", TypeDouble},
				{"mitigate_top_k", "mitigate_intruders.top_k", TypeInt64},
				{"nothing", "nothing", TypeString}, {"config_status", "status", TypeString}, {"budget_n", "budget.n", TypeInt64}},
			[][]any{{1.0, int64(10), nil, "x", int64(4)}}},
		{"a prefixed name still taken is numbered",
			[]string{`{"method_options":{"steps":1,"method_steps":2}}`},
			[]paramColumn{{"method_steps", "method_options.method_steps", TypeInt64}, {"method_steps_2", "method_options.steps", TypeInt64}},
			[][]any{{int64(2), int64(1)}}},
		{"not JSON: no params", []string{`not json`}, []paramColumn{}, [][]any{{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cols, vals := paramTable(tc.configs)
			if cols == nil {
				cols = []paramColumn{}
			}
			if !reflect.DeepEqual(cols, tc.cols) {
				t.Errorf("columns\n got %v\nwant %v", cols, tc.cols)
			}
			if !reflect.DeepEqual(vals, tc.vals) {
				t.Errorf("values\n got %#v\nwant %#v", vals, tc.vals)
			}
		})
	}
}

// TestTrainKeysMatchSweeps: the train keys' order and float kinds that
// the hyperparameter columns assume are sweeps.TrainConfig's.
func TestTrainKeysMatchSweeps(t *testing.T) {
	rt := reflect.TypeOf(sweeps.TrainConfig{})
	var keys []string
	for i := range rt.NumField() {
		f := rt.Field(i)
		name := f.Tag.Get("json")
		if name == "-" {
			continue
		}
		keys = append(keys, name)
		if got := floatParams["train."+name]; got != (f.Type.Kind() == reflect.Float64) {
			t.Errorf("train key %s: float %v, sweeps.TrainConfig has %s", name, got, f.Type)
		}
	}
	if !slices.Equal(keys, trainOrder) {
		t.Errorf("trainOrder %v, sweeps.TrainConfig has %v", trainOrder, keys)
	}
}

// TestNullableFixedColumns: rank 0 (a method without one), an empty error
// and a config without phase are null on disk, and read back as 0 and "".
func TestNullableFixedColumns(t *testing.T) {
	dir := t.TempDir()
	s := sampleShard("f1", 0, false)
	s.Trial.Method, s.Trial.Rank = "full", 0
	s.Trial.Config = `{"method":"full","rank":0,"train":{"lr":0.01}}`
	s.Trial.Phase, s.Trial.TargetMetricName = "", ""
	s.Trial.Params = map[string]any{"lr": 0.01}
	f := sampleShard("f2", 1, false)
	f.Trial.Status, f.Trial.Error = StatusFailed, "boom"
	for _, sh := range []*Shard{s, f} {
		if err := WriteShard(dir, sh); err != nil {
			t.Fatal(err)
		}
	}
	if err := Compact(dir); err != nil {
		t.Fatal(err)
	}
	tbl, err := ReadTrialsArrow(filepath.Join(dir, TrialsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	rank := column(t, tbl, "rank").(*array.Int64)
	errCol := column(t, tbl, "error").(*array.String)
	phase := column(t, tbl, "phase").(*array.String)
	name := column(t, tbl, "target_metric_name").(*array.String)
	alpha := column(t, tbl, "alpha").(*array.Int64)
	if !rank.IsNull(0) || rank.IsNull(1) || rank.Value(1) != 4 {
		t.Errorf("rank: null %v %v, want rank-less null and 4", rank.IsNull(0), rank.IsNull(1))
	}
	if !errCol.IsNull(0) || errCol.IsNull(1) || errCol.Value(1) != "boom" {
		t.Errorf("error: null %v %v, want the ok trial's null and the failed one's \"boom\"", errCol.IsNull(0), errCol.IsNull(1))
	}
	if !phase.IsNull(0) || phase.Value(1) != "search" || !name.IsNull(0) || name.Value(1) != "accuracy" {
		t.Errorf("phase null %v %q, target_metric_name null %v %q", phase.IsNull(0), phase.Value(1), name.IsNull(0), name.Value(1))
	}
	if !alpha.IsNull(0) || alpha.Value(1) != 16 {
		t.Errorf("alpha: null %v, %d: want null for a trial without the option", alpha.IsNull(0), alpha.Value(1))
	}
	rows, err := ReadTrials(filepath.Join(dir, TrialsFile))
	if err != nil {
		t.Fatal(err)
	}
	equalTrial(t, rows[0], s.Trial)
	equalTrial(t, rows[1], f.Trial)
}

// TestReadOldTrials reads a trials.parquet written before the nullable
// rank and error and the hyperparameter columns (testdata/old-trials: the
// nightly baseline as committed until batch B refreshed it):
// rank-less methods read as rank 0, ok trials' error as "", and Params
// come from the config, typed across the table.
func TestReadOldTrials(t *testing.T) {
	rows, err := ReadTrials(filepath.Join("testdata", "old-trials", TrialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("no rows")
	}
	var full, lora bool
	for _, r := range rows {
		if r.Status == StatusOK && r.Error != "" {
			t.Errorf("%s: ok with error %q", r.TrialID, r.Error)
		}
		if _, ok := r.Params["lr"].(float64); !ok {
			t.Fatalf("%s: Params[lr] = %#v, want a float64", r.TrialID, r.Params["lr"])
		}
		if _, ok := r.Params["batch"].(int64); !ok {
			t.Fatalf("%s: Params[batch] = %#v, want an int64", r.TrialID, r.Params["batch"])
		}
		if r.Phase != "" || !math.IsNaN(r.ValLoss) || !math.IsNaN(r.MergeError) || r.TargetMetricName != "" {
			t.Fatalf("%s: phase %q val_loss %v merge_error %v target_metric_name %q: want absent", r.TrialID, r.Phase, r.ValLoss, r.MergeError, r.TargetMetricName)
		}
		switch r.Method {
		case "full":
			full = full || r.Rank == 0
		case "lora":
			lora = lora || r.Rank > 0 && r.Params["alpha"] != nil
		}
	}
	if !full || !lora {
		t.Errorf("full with rank 0: %v; lora with a rank and alpha: %v", full, lora)
	}
}
