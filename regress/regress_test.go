package regress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"peftbench/results"
)

// run draws the trials of a small sweep: for each (task, method, rank),
// seeds 1..n with metrics drawn around fixed means with 1% noise.
type run struct {
	rng   *rand.Rand
	seeds int
	// scale multiplies one metric of one method: a planted change.
	scale map[[2]string]float64
}

var cells = []struct {
	task, method string
	rank         int64
}{
	{"mnist-split", "lora", 4},
	{"mnist-split", "dora", 4},
	{"mnist-split", "full", 0},
	{"safety-guard", "lora", 4},
}

func (r run) rows() []results.TrialRow {
	var rows []results.TrialRow
	for ci, c := range cells {
		for s := 1; s <= r.seeds; s++ {
			noise := func(mean float64) float64 { return mean * (1 + 0.01*r.rng.NormFloat64()) }
			row := results.TrialRow{
				Sweep: "nightly", TrialID: fmt.Sprintf("%s-%s-%d-%d", c.task, c.method, c.rank, s),
				Task: c.task, Method: c.method, Rank: c.rank, Seed: int64(s), Index: int64(ci*r.seeds + s),
				Config: fmt.Sprintf(`{"sweep":"nightly","seed":%d,"method":%q,"train":{"lr":0.001,"steps":50}}`, s, c.method),
				Status: results.StatusOK, WallSeconds: noise(2),
			}
			row.ClearMetrics()
			row.TargetMetric = noise(0.8)
			row.TargetLoss = noise(0.5)
			row.Forgetting = noise(0.05)
			row.RetainMetricAfter = noise(0.9)
			row.RetainLossAfter = noise(0.3)
			if c.task == "safety-guard" {
				row.Extra = map[string]float64{"refusal_retention": noise(0.95), "mystery": noise(1)}
			}
			for k, f := range r.scale {
				if k[0] == c.method && c.task == "mnist-split" {
					if k[1] == "wall_seconds" {
						row.WallSeconds *= f
						continue
					}
					m := metricByName(k[1])
					row.SetMetric(k[1], m.Value(&row)*f)
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func metricByName(name string) Metric {
	for _, m := range Metrics {
		if m.Name == name {
			return m
		}
	}
	m, _ := extraMetric(name)
	return m
}

func compare(t *testing.T, base, cur []results.TrialRow, opt Options) *Report {
	t.Helper()
	rep, err := CompareTrials(base, cur, opt)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func failing(rep *Report) []string {
	var out []string
	for _, r := range rep.Regressions() {
		out = append(out, fmt.Sprintf("%s %s %s", r.Name, r.Metric, r.Verdict))
	}
	return out
}

func TestPlantedChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		seeds  int
		metric string
		scale  float64
		opt    Options
		want   []string // failing rows
		other  Verdict  // verdict expected on the planted row when it does not fail
	}{
		{"accuracy-10pct-drop", 5, "target_metric", 0.9, Options{}, []string{"mnist-split/lora/r4 target_metric REGRESSED"}, ""},
		{"loss-10pct-rise", 5, "target_loss", 1.1, Options{}, []string{"mnist-split/lora/r4 target_loss REGRESSED"}, ""},
		{"forgetting-10pct-rise", 5, "forgetting", 1.1, Options{}, []string{"mnist-split/lora/r4 forgetting REGRESSED"}, ""},
		{"retain-acc-10pct-drop", 5, "retain_metric_after", 0.9, Options{}, []string{"mnist-split/lora/r4 retain_metric_after REGRESSED"}, ""},
		{"accuracy-10pct-gain", 5, "target_metric", 1.1, Options{}, nil, Improved},
		{"loss-10pct-fall", 5, "target_loss", 0.9, Options{}, nil, Improved},
		{"accuracy-3pct-drop-below-min-effect", 5, "target_metric", 0.97, Options{}, nil, Same},
		{"accuracy-3pct-drop-min-effect-2pct", 5, "target_metric", 0.97, Options{MinEffect: 0.02}, []string{"mnist-split/lora/r4 target_metric REGRESSED"}, ""},
		{"n=2-warns", 2, "target_metric", 0.9, Options{}, nil, Insufficient},
		{"n=3-warns", 3, "target_metric", 0.9, Options{}, nil, Insufficient},
		{"n=4-can-flag", 4, "target_metric", 0.8, Options{}, []string{"mnist-split/lora/r4 target_metric REGRESSED"}, ""},
		{"wall-ignored-by-default", 5, "wall_seconds", 2, Options{}, nil, ""},
		{"wall-with-min-effect", 5, "wall_seconds", 2, Options{WallMinEffect: 0.25}, []string{"mnist-split/lora/r4 wall_seconds REGRESSED"}, ""},
		{"wall-below-its-min-effect", 5, "wall_seconds", 1.15, Options{WallMinEffect: 0.25}, nil, Same},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			base := run{rng: rng, seeds: tc.seeds}.rows()
			cur := run{rng: rng, seeds: tc.seeds, scale: map[[2]string]float64{{"lora", tc.metric}: tc.scale}}.rows()
			rep := compare(t, base, cur, tc.opt)
			if got := failing(rep); !slices.Equal(got, tc.want) {
				t.Errorf("failing rows %q, want %q", got, tc.want)
			}
			if tc.other != "" {
				i := slices.IndexFunc(rep.Rows, func(r Row) bool { return r.Name == "mnist-split/lora/r4" && r.Metric == tc.metric })
				if i < 0 {
					t.Fatalf("no row for %s", tc.metric)
				}
				if v := rep.Rows[i].Verdict; v != tc.other {
					t.Errorf("planted row verdict %q, want %q", v, tc.other)
				}
			}
			if tc.other == Insufficient && !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "too few samples") }) {
				t.Errorf("no too-few-seeds warning in %q", rep.Warnings)
			}
			if tc.metric == "wall_seconds" && tc.opt.WallMinEffect == 0 &&
				slices.ContainsFunc(rep.Rows, func(r Row) bool { return r.Metric == "wall_seconds" }) {
				t.Error("wall_seconds compared without WallMinEffect")
			}
		})
	}
}

// TestRedrawnSeedsNotFlagged reruns the sweep with fresh noise many times:
// at the defaults nothing is ever flagged.
func TestRedrawnSeedsNotFlagged(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	draws := 200
	if testing.Short() {
		draws = 40
	}
	for i := range draws {
		base := run{rng: rng, seeds: 5}.rows()
		cur := run{rng: rng, seeds: 5}.rows()
		rep := compare(t, base, cur, Options{})
		if f := failing(rep); len(f) > 0 {
			t.Fatalf("draw %d: unchanged runs flagged: %q", i, f)
		}
	}
}

func TestIdenticalRunsAreSame(t *testing.T) {
	base := run{rng: rand.New(rand.NewPCG(1, 2)), seeds: 5}.rows()
	rep := compare(t, base, slices.Clone(base), Options{})
	for _, r := range rep.Rows {
		if r.Verdict != Same {
			t.Errorf("%s %s: %s on identical runs", r.Name, r.Metric, r.Verdict)
		}
	}
	if len(rep.Warnings) > 0 {
		t.Errorf("warnings on identical runs: %q", rep.Warnings)
	}
}

func TestTrialStatus(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := run{rng: rng, seeds: 5}.rows()
	find := func(rows []results.TrialRow, method string, seed int64) int {
		return slices.IndexFunc(rows, func(r results.TrialRow) bool {
			return r.Task == "mnist-split" && r.Method == method && r.Seed == seed
		})
	}
	for _, tc := range []struct {
		name string
		edit func(base, cur []results.TrialRow) ([]results.TrialRow, []results.TrialRow)
		want []string
	}{
		{"missing-trial", func(b, c []results.TrialRow) ([]results.TrialRow, []results.TrialRow) {
			return b, slices.Delete(c, find(c, "dora", 3), find(c, "dora", 3)+1)
		}, []string{"mnist-split/dora/r4 status seed=3 MISSING"}},
		{"missing-configuration", func(b, c []results.TrialRow) ([]results.TrialRow, []results.TrialRow) {
			return b, slices.DeleteFunc(c, func(r results.TrialRow) bool { return r.Method == "full" })
		}, []string{
			"mnist-split/full status seed=1 MISSING", "mnist-split/full status seed=2 MISSING",
			"mnist-split/full status seed=3 MISSING", "mnist-split/full status seed=4 MISSING",
			"mnist-split/full status seed=5 MISSING"}},
		{"new-failure", func(b, c []results.TrialRow) ([]results.TrialRow, []results.TrialRow) {
			i := find(c, "lora", 2)
			c[i].Status, c[i].Error = results.StatusDiverged, "loss NaN at step 17"
			c[i].ClearMetrics()
			return b, c
		}, []string{"mnist-split/lora/r4 status seed=2 NEW FAILURE"}},
		{"new-timeout", func(b, c []results.TrialRow) ([]results.TrialRow, []results.TrialRow) {
			i := find(c, "full", 5)
			c[i].Status, c[i].Error = results.StatusTimeout, "killed after 30s"
			return b, c
		}, []string{"mnist-split/full status seed=5 NEW FAILURE"}},
		{"fixed-is-not-a-regression", func(b, c []results.TrialRow) ([]results.TrialRow, []results.TrialRow) {
			i := find(b, "lora", 2)
			b[i].Status, b[i].Error = results.StatusFailed, "out of memory"
			return b, c
		}, nil},
		{"still-failing-is-not-a-regression", func(b, c []results.TrialRow) ([]results.TrialRow, []results.TrialRow) {
			b[find(b, "lora", 2)].Status = results.StatusFailed
			c[find(c, "lora", 2)].Status = results.StatusFailed
			return b, c
		}, nil},
		{"metric-no-longer-reported", func(b, c []results.TrialRow) ([]results.TrialRow, []results.TrialRow) {
			for i := range c {
				if c[i].Method == "dora" {
					c[i].Forgetting = math.NaN()
				}
			}
			return b, c
		}, []string{"mnist-split/dora/r4 forgetting MISSING"}},
		{"trainable-params-changed-warns", func(b, c []results.TrialRow) ([]results.TrialRow, []results.TrialRow) {
			for i := range c {
				if c[i].Method == "dora" {
					c[i].TrainableParams = 4096
				}
			}
			return b, c
		}, nil},
		{"new-configuration-is-not-a-regression", func(b, c []results.TrialRow) ([]results.TrialRow, []results.TrialRow) {
			extra := c[0]
			extra.Method, extra.TrialID = "vera", "new"
			return b, append(c, extra)
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, c := tc.edit(slices.Clone(base), run{rng: rng, seeds: 5}.rows())
			rep := compare(t, b, c, Options{})
			if got := failing(rep); !slices.Equal(got, tc.want) {
				t.Errorf("failing rows %q, want %q", got, tc.want)
			}
			changed := slices.ContainsFunc(rep.Rows, func(r Row) bool { return r.Metric == "trainable_params" && r.Verdict == Changed })
			if want := strings.HasPrefix(tc.name, "trainable-params"); changed != want {
				t.Errorf("trainable_params changed row: %v, want %v", changed, want)
			}
		})
	}
}

func TestExtraMetrics(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	base := run{rng: rng, seeds: 5}.rows()
	cur := run{rng: rng, seeds: 5}.rows()
	for i := range cur {
		if cur[i].Task == "safety-guard" {
			cur[i].Extra["refusal_retention"] *= 0.85
			cur[i].Extra["mystery"] *= 2
		}
	}
	rep := compare(t, base, cur, Options{})
	if got, want := failing(rep), []string{"safety-guard/lora/r4 refusal_retention REGRESSED"}; !slices.Equal(got, want) {
		t.Errorf("failing rows %q, want %q", got, want)
	}
	i := slices.IndexFunc(rep.Rows, func(r Row) bool { return r.Metric == "mystery" })
	if i < 0 || rep.Rows[i].Verdict != Changed {
		t.Errorf("an extra of unknown direction that doubled: want verdict %q, rows %+v", Changed, rep.Rows)
	}
}

// TestConfigVariants checks that trials differing in a setting other than
// the seed are separate groups, named by the setting.
func TestConfigVariants(t *testing.T) {
	var base []results.TrialRow
	for _, lr := range []string{"0.001", "0.01"} {
		for s := int64(1); s <= 5; s++ {
			r := results.TrialRow{TrialID: fmt.Sprint(lr, s), Task: "t", Method: "lora", Rank: 8, Seed: s, Status: results.StatusOK,
				Config: fmt.Sprintf(`{"seed":%d,"trial_id":"x%d","train":{"lr":%s,"steps":10}}`, s, s, lr)}
			r.ClearMetrics()
			r.TargetMetric = 0.5 + 0.001*float64(s)
			if lr == "0.01" {
				r.TargetMetric += 0.3
			}
			base = append(base, r)
		}
	}
	rep := compare(t, base, base, Options{})
	var names []string
	for _, r := range rep.Rows {
		if !slices.Contains(names, r.Name) {
			names = append(names, r.Name)
		}
		if r.Verdict != Same {
			t.Errorf("%s %s: %s", r.Name, r.Metric, r.Verdict)
		}
	}
	if want := []string{"t/lora/r8 train.lr=0.001", "t/lora/r8 train.lr=0.01"}; !slices.Equal(names, want) {
		t.Errorf("groups %q, want %q", names, want)
	}
	// A changed default shows as missing plus new, with a hint.
	cur := slices.Clone(base)
	for i := range cur {
		cur[i].Config = strings.Replace(cur[i].Config, `"steps":10`, `"steps":20`, 1)
	}
	rep = compare(t, base, cur, Options{})
	if len(rep.Regressions()) != 10 || !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "refresh the baseline") }) {
		t.Errorf("changed config: %d regressions, warnings %q", len(rep.Regressions()), rep.Warnings)
	}
}

func TestLoadTrialsFromCompactedSweep(t *testing.T) {
	dir := t.TempDir()
	rows := run{rng: rand.New(rand.NewPCG(8, 9)), seeds: 3}.rows()
	for i := range rows {
		if err := results.WriteShard(dir, &results.Shard{Trial: rows[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := results.Compact(dir); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, dir + "/" + results.TrialsFile} {
		got, err := LoadTrials(path)
		if err != nil {
			t.Fatal(err)
		}
		rep := compare(t, rows, got, Options{})
		for _, r := range rep.Rows {
			if r.Verdict != Insufficient {
				t.Errorf("%s: %s %s after a round trip", path, r.Name, r.Metric)
			}
		}
		if len(rep.Rows) == 0 {
			t.Error("no rows")
		}
	}
	if _, err := LoadTrials(t.TempDir()); err == nil || !strings.Contains(err.Error(), "trials.parquet") {
		t.Errorf("folder without a table: %v", err)
	}
}

func TestFormats(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	base := run{rng: rng, seeds: 5}.rows()
	cur := run{rng: rng, seeds: 5, scale: map[[2]string]float64{{"lora", "target_metric"}: 0.9}}.rows()
	cur = slices.DeleteFunc(cur, func(r results.TrialRow) bool { return r.Method == "dora" && r.Seed == 4 })
	rep := compare(t, base, cur, Options{})
	rep.Baseline, rep.Current = "ci/baseline", "results/nightly"

	var txt, md, js bytes.Buffer
	for _, f := range []struct {
		name string
		w    *bytes.Buffer
	}{{"text", &txt}, {"markdown", &md}, {"json", &js}} {
		if err := rep.Write(f.w, f.name); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"name", "mnist-split/lora/r4", "REGRESSED", "MISSING", "p=0.008 n=5+5", "2 regressions"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
	if !regexp.MustCompile(`target_metric .* -1[01]\.\d% +p=`).MatchString(txt.String()) {
		t.Errorf("text lacks the planted drop's delta:\n%s", txt.String())
	}
	for _, want := range []string{"## ❌ Regression check", "| name | metric |", "**REGRESSED**", "<details>", "### Changes"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var decoded struct {
		Regressions int `json:"regressions"`
		Rows        []struct {
			Name    string     `json:"name"`
			Metric  string     `json:"metric"`
			Verdict string     `json:"verdict"`
			Fails   bool       `json:"fails"`
			P       *float64   `json:"p"`
			Base    []*float64 `json:"baseline"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil {
		t.Fatalf("json: %v\n%s", err, js.String())
	}
	if decoded.Regressions != 2 || len(decoded.Rows) != len(rep.Rows) {
		t.Errorf("json: %d regressions, %d rows; want 2, %d", decoded.Regressions, len(decoded.Rows), len(rep.Rows))
	}
	if err := rep.Write(&txt, "yaml"); err == nil {
		t.Error("unknown format accepted")
	}
}
