package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/results"
	"peftbench/sweeps"
	"peftbench/tasks"
)

// lawSweep writes a results folder (shards only, as while a sweep runs) of
// trials whose forgetting follows L_f = 0.5 + 0.02·P^0.3·N^0.4 (task "law")
// and L_f = 3 − 2·L_ft (task "line"), each with 2% noise, plus a task
// "flat" whose steps never vary.
func lawSweep(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "law")
	rng := rand.New(rand.NewPCG(5, 5))
	noise := func() float64 { return 1 + 0.02*rng.NormFloat64() }
	i := 0
	add := func(task string, p, n int64, lft, lf float64) {
		row := results.TrialRow{Sweep: "law", TrialID: fmt.Sprintf("t%03d", i), Index: int64(i), Task: task, Method: "lora",
			Status: results.StatusOK, TrainableParams: p, Steps: n}
		row.ClearMetrics()
		row.TargetLoss, row.Forgetting = lft, lf
		if err := results.WriteShard(dir, &results.Shard{Trial: row}); err != nil {
			t.Fatal(err)
		}
		i++
	}
	for _, p := range []int64{1e3, 4e3, 16e3, 64e3, 256e3} {
		for _, n := range []int64{100, 200, 400, 800, 1600} {
			add("law", p, n, 1, (0.5+0.02*math.Pow(float64(p), 0.3)*math.Pow(float64(n), 0.4))*noise())
		}
	}
	for k := range 20 {
		lft := 0.2 + 0.05*float64(k)
		add("line", 1000, 100, lft, (3-2*lft)*noise())
	}
	for k := range 6 {
		add("flat", int64(1000*(k+1)), 100, 1, 1+0.1*float64(k))
	}
	return dir
}

func TestFitCommandRecoversLaws(t *testing.T) {
	dir := lawSweep(t)
	var out, errb bytes.Buffer
	if err := runFit([]string{dir, "--json"}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	var fits []struct {
		Task, Law, Error string
		Fit              *struct {
			Params []string
			Values []float64
			Lo     []float64 `json:"ci_lo"`
			Hi     []float64 `json:"ci_hi"`
			R2     float64
		}
	}
	if err := json.Unmarshal(out.Bytes(), &fits); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := map[string]map[string][3]float64{} // task/law → param → value, lo, hi
	r2 := map[string]float64{}
	errs := map[string]string{}
	for _, f := range fits {
		key := f.Task + "/" + f.Law
		if f.Fit == nil {
			errs[key] = f.Error
			continue
		}
		got[key] = map[string][3]float64{}
		for i, p := range f.Fit.Params {
			got[key][p] = [3]float64{f.Fit.Values[i], f.Fit.Lo[i], f.Fit.Hi[i]}
		}
		r2[key] = f.Fit.R2
	}
	// The 95% intervals' coverage is the analysis package's test; here the
	// estimates must be near the truth and inside their own intervals.
	for _, c := range []struct {
		key, param string
		want, tol  float64
	}{
		{"law/power", "alpha", 0.3, 0.05},
		{"law/power", "beta", 0.4, 0.05},
		{"line/linear", "a", 3, 0.1},
		{"line/linear", "b", 2, 0.1},
	} {
		v, ok := got[c.key][c.param]
		if !ok {
			t.Errorf("%s: no %s (error %q)", c.key, c.param, errs[c.key])
			continue
		}
		if math.Abs(v[0]-c.want) > c.tol || !(v[1] < v[0] && v[0] < v[2]) {
			t.Errorf("%s %s = %.4g, 95%% CI [%.4g, %.4g]; true %g", c.key, c.param, v[0], v[1], v[2], c.want)
		}
		if r2[c.key] < 0.9 {
			t.Errorf("%s: R² = %.3f", c.key, r2[c.key])
		}
	}
	if e := errs["flat/power"]; !strings.Contains(e, "steps takes one value") {
		t.Errorf("flat/power error = %q, want it to say steps does not vary", e)
	}
	if e := errs["line/power"]; !strings.Contains(e, "one value") {
		t.Errorf("line/power error = %q", e)
	}
}

func TestFitCommandErrors(t *testing.T) {
	dir := lawSweep(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{dir, "--form", "linear"}, "--form"},
		{[]string{dir, "--form", "cubic"}, "--form"},
		{[]string{dir, "--x", "steps"}, "takes 2 predictors"},
		{[]string{dir, "--x", "steps,nope"}, `unknown column "nope"`},
		{[]string{dir, "--task", "missing"}, `no ok trial of task "missing"`},
		{[]string{dir, "--task", "flat"}, "no law could be fitted"},
		{[]string{}, "missing results folder"},
	} {
		t.Run(strings.Join(c.args[min(1, len(c.args)):], " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := runFit(c.args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestFitCommandTable(t *testing.T) {
	dir := lawSweep(t)
	var out, errb bytes.Buffer
	if err := runFit([]string{dir, "--task", "law", "--form", "power-P"}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	s := out.String()
	for _, want := range []string{"L_f = c + A·P^α (P = trainable_params)", "alpha", "no fit: target_loss takes one value"} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}

// TestFitCommandRefusesDegenerate fits forgetting against N alone on data
// where P carries most of the variance: R² 0.29, which analysis.Accept
// refuses, so bench fit reports no law (the report follows the same rule).
func TestFitCommandRefusesDegenerate(t *testing.T) {
	dir := lawSweep(t)
	var out, errb bytes.Buffer
	err := runFit([]string{dir, "--task", "law", "--form", "power-N"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "no law could be fitted") {
		t.Errorf("error %v, want no law could be fitted", err)
	}
	if s := out.String(); !strings.Contains(s, "no fit: degenerate fit: R² = 0.29 below 0.5") {
		t.Errorf("table does not refuse the degenerate power-N fit:\n%s", s)
	}
}

func TestSpectraHookSkips(t *testing.T) {
	cache, err := tasks.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if h := spectraHook(&sweeps.Plan{}, cache); h != nil {
		t.Error("hook set for a plan without [analysis] spectra")
	}
	h := spectraHook(&sweeps.Plan{Analysis: sweeps.Analysis{Spectra: true, Epsilons: []float64{0.5}, TopK: 10}}, cache)
	s := &results.Shard{}
	s.Trial.ClearMetrics()
	if err := h(context.Background(), sweeps.Trial{}, t.TempDir(), map[string]string{}, s); err != nil || len(s.Spectra) != 0 || len(s.Trial.Intruders) != 0 {
		t.Errorf("no weights artifact: err %v, %d rows, intruders %v", err, len(s.Spectra), s.Trial.Intruders)
	}
	err = h(context.Background(), sweeps.Trial{}, t.TempDir(), map[string]string{"weights": "weights.safetensors"}, s)
	if err == nil {
		t.Error("missing weights file: no error")
	}
}
