package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/catalog"
	"peftbench/methods"
	"peftbench/results"
	"peftbench/sweeps"
	"peftbench/tasks"
)

// writeSweep writes a compacted sweep folder under dir: methods × seeds
// trials of one task with metrics drawn around fixed means (1% noise);
// drop scales lora's target_metric.
func writeSweep(t *testing.T, dir string, seed uint64, seeds int, drop float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	noise := func(m float64) float64 { return m * (1 + 0.01*rng.NormFloat64()) }
	i := 0
	for _, method := range []string{"lora", "dora", "full"} {
		rank := int64(4)
		if method == "full" {
			rank = 0
		}
		for s := 1; s <= seeds; s++ {
			row := results.TrialRow{Sweep: "nightly", TrialID: fmt.Sprintf("%s-%d", method, s), Index: int64(i),
				Task: "mnist-split", Method: method, Rank: rank, Seed: int64(s), Status: results.StatusOK,
				Config: fmt.Sprintf(`{"seed":%d,"train":{"steps":40}}`, s)}
			row.ClearMetrics()
			row.TargetMetric, row.TargetLoss, row.Forgetting = noise(0.8), noise(0.5), noise(0.05)
			if method == "lora" {
				row.TargetMetric *= drop
			}
			if err := results.WriteShard(dir, &results.Shard{Trial: row}); err != nil {
				t.Fatal(err)
			}
			i++
		}
	}
	if err := results.Compact(dir); err != nil {
		t.Fatal(err)
	}
}

// exitCode is the status main gives for err.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return 1
}

func TestRegressExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		seeds    int
		drop     float64
		wantCode int
		wantOut  string
	}{
		{"unchanged-redrawn", 5, 1, 0, "no regressions"},
		{"planted-10pct-drop", 5, 0.9, 1, "REGRESSED"},
		{"n=2-warns-only", 2, 0.9, 0, "warning: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, cur := t.TempDir(), t.TempDir()
			writeSweep(t, base, 1, tc.seeds, 1)
			writeSweep(t, cur, 2, tc.seeds, tc.drop)
			var out, errb bytes.Buffer
			err := runRegress([]string{"--baseline", base, "--current", cur}, &out, &errb)
			if got := exitCode(err); got != tc.wantCode {
				t.Errorf("exit status %d (%v), want %d\n%s", got, err, tc.wantCode, out.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, out.String())
			}
		})
	}
}

// TestRegressCommittedBaseline is the nightly check's own check: the
// committed baseline compares clean against itself, and a copy with a
// planted 10% drop of one configuration's target metric (rewritten with
// the results package, as a broken change would leave it) fails with exit
// status 1.
func TestRegressCommittedBaseline(t *testing.T) {
	baseline := filepath.Join("..", "..", "ci", "baseline")
	rows, err := results.ReadTrials(filepath.Join(baseline, results.TrialsFile))
	if err != nil {
		t.Fatalf("the committed baseline: %v (refresh it with ci/refresh-baseline.sh)", err)
	}
	var out bytes.Buffer
	if err := runRegress([]string{"--baseline", baseline, "--current", baseline}, &out, io.Discard); err != nil {
		t.Fatalf("baseline against itself: %v\n%s", err, out.String())
	}

	// Plant the drop in the configuration with the most ok seeds.
	type key struct {
		task, method string
		rank         int64
	}
	count := map[key]int{}
	var victim key
	for _, r := range rows {
		if r.Status == results.StatusOK && !math.IsNaN(r.TargetMetric) {
			k := key{r.Task, r.Method, r.Rank}
			count[k]++
			if count[k] > count[victim] {
				victim = k
			}
		}
	}
	if count[victim] < 4 {
		t.Fatalf("the baseline has at most %d seeds of a configuration; the test needs 4 to reach α = 0.05", count[victim])
	}
	// Lower every seed's target_metric (higher is better) by 10% of the
	// largest |value| plus the seeds' spread, so that every current seed is
	// below every baseline seed whatever the noise between seeds.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		if (key{r.Task, r.Method, r.Rank}) == victim && r.Status == results.StatusOK {
			lo, hi = min(lo, r.TargetMetric), max(hi, r.TargetMetric)
		}
	}
	shift := 0.1*max(math.Abs(lo), math.Abs(hi)) + (hi - lo)
	cur := t.TempDir()
	for i := range rows {
		r := &rows[i]
		if (key{r.Task, r.Method, r.Rank}) == victim {
			r.TargetMetric -= shift
		}
		if err := results.WriteShard(cur, &results.Shard{Trial: *r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := results.Compact(cur); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = runRegress([]string{"--baseline", baseline, "--current", cur, "--format", "markdown"}, &out, io.Discard)
	if exitCode(err) != 1 || !strings.Contains(out.String(), "**REGRESSED**") {
		t.Errorf("planted drop in %v: exit status %d (%v), want 1\n%s", victim, exitCode(err), err, out.String())
	}
}

func TestRegressPerf(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, gflops []float64) string {
		var b strings.Builder
		for _, g := range gflops {
			fmt.Fprintf(&b, "[{\"name\":\"sgemm/n=1024\",\"value\":%g,\"unit\":\"GFLOP/s\"},{\"name\":\"step/mlp/lora\",\"value\":3.1,\"unit\":\"ms\"}]\n", g)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := write("base.json", []float64{80, 81, 79.5, 80.2, 80.9})
	same := write("same.json", []float64{80.4, 79.8, 81.2, 80, 80.6})
	slow := write("slow.json", []float64{68, 69, 68.5, 67.9, 69.3})
	for _, tc := range []struct {
		cur  string
		code int
	}{{same, 0}, {slow, 1}} {
		var out bytes.Buffer
		err := runRegress([]string{"--baseline", base, "--current", tc.cur, "--format", "json"}, &out, io.Discard)
		if exitCode(err) != tc.code {
			t.Errorf("%s: exit status %d (%v), want %d\n%s", tc.cur, exitCode(err), err, tc.code, out.String())
		}
	}
}

func TestRegressGolden(t *testing.T) {
	base, cur := t.TempDir(), t.TempDir()
	writeSweep(t, base, 1, 5, 1)
	writeSweep(t, cur, 2, 5, 0.9)
	for _, format := range []string{"text", "markdown", "json"} {
		var out bytes.Buffer
		err := runRegress([]string{"--baseline", base, "--current", cur, "--format", format}, &out, io.Discard)
		if exitCode(err) != 1 {
			t.Fatalf("%s: exit status %d (%v)", format, exitCode(err), err)
		}
		got := strings.ReplaceAll(strings.ReplaceAll(out.String(), base, "BASE"), cur, "CUR")
		name := "regress." + map[string]string{"text": "txt", "markdown": "md", "json": "json"}[format]
		checkGolden(t, name, "bench regress --format "+format, []byte(got))
	}
}

func TestRegressUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--current", dir}, "--baseline and --current are required"},
		{[]string{"--baseline", dir, "--current", dir, "--min-effect", "five"}, "percentage"},
		{[]string{"--baseline", dir, "--current", dir, "--min-effect", "0"}, "must be positive"},
		{[]string{"--baseline", dir, "--current", dir, "--alpha", "1.5"}, "not in (0, 1)"},
		{[]string{"--baseline", dir, "--current", dir, "--format", "yaml"}, "unknown format"},
		{[]string{"--baseline", dir, "--current", "b.json"}, "not of one kind"},
		{[]string{"--baseline", dir, "--current", dir}, "has no trials.parquet"},
		{[]string{"--baseline", dir, "--current", dir, "extra"}, "unexpected argument"},
	} {
		var out, errb bytes.Buffer
		err := runRegress(tc.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error()+errb.String(), tc.want) {
			t.Errorf("bench regress %q: error %v, want %q", tc.args, err, tc.want)
		}
		if exitCode(err) == 0 {
			t.Errorf("bench regress %q: exit status 0", tc.args)
		}
	}
}

func TestFractionFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{{"5%", 0.05, true}, {"0.05", 0.05, true}, {"12.5%", 0.125, true}, {" 25% ", 0.25, true}, {"-1%", 0, false}, {"x", 0, false}, {"2000%", 0, false}} {
		var f fraction
		err := f.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && math.Abs(float64(f)-tc.want) > 1e-12) {
			t.Errorf("Set(%q) = %v, %v; want %v ok=%v", tc.in, float64(f), err, tc.want, tc.ok)
		}
	}
}

// TestNightlyCoversRegistries checks that the nightly sweep runs every
// registered method on every registered task, so that no method or task
// escapes the regression check.
func TestNightlyCoversRegistries(t *testing.T) {
	plan, err := sweeps.Load(filepath.Join("..", "..", "experiments", "nightly.toml"), catalog.Registries{})
	if err != nil {
		t.Fatal(err)
	}
	seeds := map[[2]string]map[int64]bool{}
	for _, tr := range plan.Trials {
		k := [2]string{tr.Method, tr.Task}
		if seeds[k] == nil {
			seeds[k] = map[int64]bool{}
		}
		seeds[k][tr.Seed] = true
	}
	for _, m := range methods.Names() {
		for _, task := range tasks.Names() {
			if _, err := tasks.ResolveOptions(task, nil); err != nil {
				continue // a task that needs files (lm) is not in the nightly
			}
			o, err := methods.ResolveOptions(m, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := (catalog.Registries{}).CheckMethodTask(m, o, task, nil); err != nil {
				continue // the method cannot run on the task (LN tuning on an MLP)
			}
			if n := len(seeds[[2]string{m, task}]); n < 5 {
				t.Errorf("experiments/nightly.toml runs %s on %s with %d seeds, want ≥ 5 (the least with room for p < 0.05)", m, task, n)
			}
		}
	}
}
