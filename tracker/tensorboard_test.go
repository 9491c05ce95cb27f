package tracker_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"peftbench/configs"
	"peftbench/results"
	"peftbench/tracker"
)

// pyRun is one run as tfevents_read.py prints it.
type pyRun struct {
	Files       []string            `json:"files"`
	FileVersion string              `json:"file_version"`
	Scalars     [][]json.RawMessage `json:"scalars"` // tag, step, value hex, wall hex
	Start       *struct {
		HParams   map[string][2]json.RawMessage `json:"hparams"`
		Group     string                        `json:"group"`
		StartTime string                        `json:"start_time"`
	} `json:"start"`
	End *struct {
		Status  int    `json:"status"`
		EndTime string `json:"end_time"`
	} `json:"end"`
	Experiment *struct {
		HParamInfos []struct {
			Name     string              `json:"name"`
			Type     int                 `json:"type"`
			Discrete [][]json.RawMessage `json:"discrete"`
			Interval []string            `json:"interval"`
			Differs  bool                `json:"differs"`
		} `json:"hparam_infos"`
		MetricInfos [][2]string `json:"metric_infos"`
	} `json:"experiment"`
	Texts       map[string]string `json:"texts"`
	NullTensors int               `json:"null_tensors"`
}

type scalar struct {
	tag   string
	step  int64
	value float64 // the float32 read, as float64
	wall  float64
}

func (r *pyRun) scalars(t *testing.T) []scalar {
	t.Helper()
	var out []scalar
	for _, s := range r.Scalars {
		var sc scalar
		var v, w string
		if err := json.Unmarshal(s[0], &sc.tag); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(s[1], &sc.step); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(s[2], &v)
		json.Unmarshal(s[3], &w)
		sc.value, sc.wall = hexFloat(t, v), hexFloat(t, w)
		out = append(out, sc)
	}
	return out
}

// hexFloat parses Python's float.hex() (and its inf, nan).
func hexFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("float %q: %v", s, err)
	}
	return f
}

// readEvents runs the independent Python reader over logdir.
func readEvents(t *testing.T, logdir string) map[string]*pyRun {
	t.Helper()
	out, err := runPython(t, "tfevents_read.py", logdir)
	if err != nil {
		t.Fatalf("tfevents_read.py: %v", err)
	}
	var got struct {
		Runs map[string]*pyRun `json:"runs"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("tfevents_read.py output: %v", err)
	}
	return got.Runs
}

// sameF32 says whether got, a float32 read back, is want rounded to
// float32 (NaN equal to NaN).
func sameF32(got, want float64) bool {
	w := float64(float32(want))
	return got == w || math.IsNaN(got) && math.IsNaN(w)
}

// expectedHParams are a trial's hyperparameters as the test derives them,
// from TrialRow's fields and its Params (trials.parquet's typed
// hyperparameter columns), not from results.Flatten as the exporter does.
func expectedHParams(r *results.TrialRow) map[string]any {
	hp := map[string]any{"method": r.Method, "task": r.Task, "seed": r.Seed}
	if r.Rank > 0 {
		hp["rank"] = r.Rank
	}
	if r.Phase != "" {
		hp["phase"] = r.Phase
	}
	if !math.IsNaN(r.MitigateLambda) {
		hp["mitigate_lambda"] = r.MitigateLambda
	}
	for k, v := range r.Params {
		if v != nil {
			hp[k] = v
		}
	}
	return hp
}

// expectedFinals are a trial's final metrics by column, from the configs
// column registry and TrialRow's fields: every numeric column it reports.
func expectedFinals(r *results.TrialRow) map[string]float64 {
	out := map[string]float64{"attempts": float64(r.Attempts)}
	for _, name := range configs.ColumnNames() {
		if name == "rank" {
			continue // a hyperparameter
		}
		c, _ := configs.Lookup(name)
		if v := c.Value(r); !math.IsNaN(v) {
			out[name] = v
		}
	}
	if r.Status == results.StatusDiverged {
		out["diverged_step"] = float64(r.DivergedStep)
	}
	for _, c := range r.Intruders {
		out["intruders_"+strconv.FormatFloat(c.Epsilon, 'g', -1, 64)] = float64(c.Count)
	}
	for k, v := range r.Extra {
		out["extra_"+k] = v
	}
	return out
}

// configIdentity is a trial's configuration across seeds as the test
// sees it: its hyperparameters but the seed.
func configIdentity(r *results.TrialRow) string {
	hp := expectedHParams(r)
	delete(hp, "seed")
	keys := make([]string, 0, len(hp))
	for k := range hp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v;", k, hp[k])
	}
	return b.String()
}

// TestTensorBoardIndependentReader: the event files, read by a Python
// reader of its own (TFRecord framing and both masked CRC32Cs checked,
// protobuf parsed by hand), hold every step of steps.parquet as
// <split>/<metric> (float32, same step, same order), every final metric
// of trials.parquet as final/<column> at the last step, every
// hyperparameter of trials.parquet in the session start, one group per
// configuration across seeds, the session status, the user's note as
// text and tags as an hparam, and the experiment in the root run.
//
// Planted bugs it caught (each tried by hand, see the commit message):
// the CRC mask constant off by one (the reader's CRC check), every step
// one more than recorded (the scalar comparison), the last hyperparameter
// column dropped from the session start (the hparam comparison).
func TestTensorBoardIndependentReader(t *testing.T) {
	dir := resultsFolder(t)
	trials, err := results.ReadTrials(filepath.Join(dir, results.TrialsFile))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := results.ReadSteps(filepath.Join(dir, results.StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	notes, err := results.ReadAnnotations(dir)
	if err != nil {
		t.Fatal(err)
	}
	stepsOf := map[string][]results.StepRow{}
	for _, s := range steps {
		stepsOf[s.TrialID] = append(stepsOf[s.TrialID], s)
	}
	statuses := map[string]bool{}
	for _, r := range trials {
		statuses[r.Status] = true
	}
	for _, st := range []string{results.StatusOK, results.StatusDiverged, results.StatusFailed} {
		if !statuses[st] {
			t.Fatalf("the fixture has no %s trial: %v", st, statuses)
		}
	}

	s, _, err := tracker.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	logdir := filepath.Join(t.TempDir(), "tb")
	runs, err := tracker.WriteTensorBoard(logdir, []*tracker.Sweep{s})
	if err != nil {
		t.Fatal(err)
	}
	if keep := os.Getenv("PEFTBENCH_TRACKER_KEEP"); keep != "" {
		keepExport(t, logdir, keep, trials, stepsOf, notes)
	}
	got := readEvents(t, logdir)
	if len(got) != len(trials)+1 {
		t.Errorf("%d runs read, want %d trials and the root", len(got), len(trials))
	}
	safe := regexp.MustCompile(`^[A-Za-z0-9._=+-]+$`)

	groupOf := map[string]string{} // test's config identity → group name
	allHP := map[string]bool{}
	allFinal := map[string]bool{}
	for i := range trials {
		r := &trials[i]
		run := got[runs[i].Dir]
		if runs[i].TrialID != r.TrialID || run == nil {
			t.Fatalf("trial %s: no run read at %q", r.TrialID, runs[i].Dir)
		}
		name := "trial " + r.TrialID + " (" + r.Status + ")"
		for _, part := range strings.Split(runs[i].Dir, "/") {
			if !safe.MatchString(part) {
				t.Errorf("%s: run folder %q is not a safe file name", name, part)
			}
		}
		if !strings.HasSuffix(runs[i].Dir, "_"+r.TrialID) || !strings.Contains(runs[i].Dir, "seed="+strconv.FormatInt(r.Seed, 10)) {
			t.Errorf("%s: run folder %q lacks the seed or the trial ID", name, runs[i].Dir)
		}
		if want := fmt.Sprintf("events.out.tfevents.%d.peftbench", r.StartedAt.Unix()); !slices.Equal(run.Files, []string{want}) {
			t.Errorf("%s: files %v, want [%s]", name, run.Files, want)
		}
		if run.FileVersion != "brain.Event:2" {
			t.Errorf("%s: file_version %q", name, run.FileVersion)
		}
		if run.NullTensors != 2 {
			t.Errorf("%s: %d hparams values with the empty DT_FLOAT tensor, want 2", name, run.NullTensors)
		}

		// Step scalars, then the final metrics at the last step.
		var steps, finals []scalar
		for _, sc := range run.scalars(t) {
			if strings.HasPrefix(sc.tag, tracker.FinalPrefix) {
				finals = append(finals, sc)
			} else {
				steps = append(steps, sc)
			}
		}
		want := stepsOf[r.TrialID]
		if len(want) == 0 {
			t.Errorf("%s: no steps in steps.parquet: the comparison would be empty", name)
		}
		if len(steps) != len(want) {
			t.Errorf("%s: %d step scalars, steps.parquet has %d", name, len(steps), len(want))
		}
		var last int64
		for j, w := range want {
			last = max(last, w.Step)
			if j >= len(steps) {
				break
			}
			g := steps[j]
			if g.tag != w.Split+"/"+w.Metric || g.step != w.Step || !sameF32(g.value, w.Value) {
				t.Errorf("%s: scalar %d = %s@%d %g, steps.parquet has %s/%s@%d %g", name, j, g.tag, g.step, g.value, w.Split, w.Metric, w.Step, w.Value)
			}
			if sec := float64(r.StartedAt.UnixMicro()) / 1e6; g.wall < sec || g.wall > float64(r.EndedAt.UnixMicro())/1e6 {
				t.Errorf("%s: scalar %d wall time %f outside the trial's %s..%s", name, j, g.wall, r.StartedAt, r.EndedAt)
			}
		}
		wantFinal := expectedFinals(r)
		if r.Status == results.StatusOK {
			for _, must := range []string{"target_metric", "forgetting", "trainable_params", "ms_per_step"} {
				if _, ok := wantFinal[must]; !ok {
					t.Errorf("%s: the fixture reports no %s", name, must)
				}
			}
		}
		gotFinal := map[string]float64{}
		for _, f := range finals {
			col := strings.TrimPrefix(f.tag, tracker.FinalPrefix)
			allFinal[f.tag] = true
			gotFinal[col] = f.value
			if f.step != last {
				t.Errorf("%s: %s at step %d, want the last step %d", name, f.tag, f.step, last)
			}
		}
		for col, w := range wantFinal {
			g, ok := gotFinal[col]
			if !ok {
				t.Errorf("%s: no final/%s (trials.parquet: %g)", name, col, w)
			} else if !sameF32(g, w) {
				t.Errorf("%s: final/%s = %g, trials.parquet has %g", name, col, g, w)
			}
		}
		for col := range gotFinal {
			if _, ok := wantFinal[col]; !ok {
				t.Errorf("%s: final/%s is not a column trials.parquet reports", name, col)
			}
		}

		// Hyperparameters and the group.
		if run.Start == nil || run.End == nil {
			t.Fatalf("%s: session start %v, end %v", name, run.Start != nil, run.End != nil)
		}
		wantHP := expectedHParams(r)
		a := notes[r.TrialID]
		wantHP["tags"] = strings.Join(a.Tags, ",")
		for k, w := range wantHP {
			allHP[k] = true
			g, ok := run.Start.HParams[k]
			if !ok {
				t.Errorf("%s: hparam %s missing (trials.parquet: %v)", name, k, w)
				continue
			}
			if err := sameHParam(g, w); err != nil {
				t.Errorf("%s: hparam %s: %v", name, k, err)
			}
		}
		for k := range run.Start.HParams {
			if _, ok := wantHP[k]; !ok {
				t.Errorf("%s: hparam %s is not a hyperparameter of trials.parquet", name, k)
			}
		}
		if id := configIdentity(r); groupOf[id] == "" {
			for other, g := range groupOf {
				if g == run.Start.Group {
					t.Errorf("%s: group %q is also configuration %s's", name, g, other)
				}
			}
			groupOf[id] = run.Start.Group
		} else if groupOf[id] != run.Start.Group {
			t.Errorf("%s: group %q, its other seed's is %q", name, run.Start.Group, groupOf[id])
		}
		if hexFloat(t, run.Start.StartTime) != float64(r.StartedAt.UnixMicro())/1e6 {
			t.Errorf("%s: start_time_secs %s, started_at %s", name, run.Start.StartTime, r.StartedAt)
		}
		wantStatus := map[string]int{results.StatusOK: 1, results.StatusDiverged: 2, results.StatusFailed: 2}[r.Status]
		if run.End.Status != wantStatus {
			t.Errorf("%s: session status %d, want %d", name, run.End.Status, wantStatus)
		}
		if hexFloat(t, run.End.EndTime) != float64(r.EndedAt.UnixMicro())/1e6 {
			t.Errorf("%s: end_time_secs %s, ended_at %s", name, run.End.EndTime, r.EndedAt)
		}
		if a.Note != "" && run.Texts["note"] != a.Note || a.Note == "" && len(run.Texts) > 0 {
			t.Errorf("%s: texts %q, note %q", name, run.Texts, a.Note)
		}
	}
	if len(groupOf) != 3 {
		t.Errorf("%d groups, want 3 (three learning rates, two seeds each)", len(groupOf))
	}

	root := got["."]
	if root == nil || root.Experiment == nil {
		t.Fatal("no experiment in the root run")
	}
	if root.NullTensors != 1 || len(root.Scalars) != 0 || root.FileVersion != "brain.Event:2" {
		t.Errorf("root run: %d null tensors, %d scalars, file_version %q", root.NullTensors, len(root.Scalars), root.FileVersion)
	}
	infos := map[string]int{}
	for _, h := range root.Experiment.HParamInfos {
		infos[h.Name] = h.Type
		if !allHP[h.Name] {
			t.Errorf("experiment: hparam_info %s no session has", h.Name)
		}
		if h.Type == 1 && len(h.Discrete) == 0 || h.Type == 3 && len(h.Interval) != 2 {
			t.Errorf("experiment: hparam_info %s: type %d, discrete %v, interval %v", h.Name, h.Type, h.Discrete, h.Interval)
		}
	}
	for k := range allHP {
		if _, ok := infos[k]; !ok {
			t.Errorf("experiment: no hparam_info for %s", k)
		}
	}
	for k, typ := range map[string]int{"method": 1, "lr": 3, "seed": 3, "tags": 1} {
		if infos[k] != typ {
			t.Errorf("experiment: %s has type %d, want %d", k, infos[k], typ)
		}
	}
	var metricTags []string
	for _, m := range root.Experiment.MetricInfos {
		if m[0] != "" {
			t.Errorf("experiment: metric %v has a group: the final metrics are in the session's own run", m)
		}
		metricTags = append(metricTags, m[1])
	}
	var wantTags []string
	for k := range allFinal {
		wantTags = append(wantTags, k)
	}
	slices.Sort(metricTags)
	slices.Sort(wantTags)
	if !slices.Equal(metricTags, wantTags) {
		t.Errorf("experiment: metric_infos %v, the sessions' final tags %v", metricTags, wantTags)
	}
	if root.Start != nil || root.End != nil {
		t.Error("the root run has a session start or end")
	}
}

// sameHParam compares a google.protobuf.Value read by Python ([kind,
// value]) with a typed hyperparameter.
func sameHParam(g [2]json.RawMessage, w any) error {
	var kind string
	json.Unmarshal(g[0], &kind)
	switch x := w.(type) {
	case string:
		var s string
		if err := json.Unmarshal(g[1], &s); kind != "string" || err != nil || s != x {
			return fmt.Errorf("read %s %s, want string %q", kind, g[1], x)
		}
	case bool:
		var b bool
		if err := json.Unmarshal(g[1], &b); kind != "bool" || err != nil || b != x {
			return fmt.Errorf("read %s %s, want bool %v", kind, g[1], x)
		}
	case int64, float64:
		want := 0.0
		if i, ok := x.(int64); ok {
			want = float64(i)
		} else {
			want = x.(float64)
		}
		var h string
		json.Unmarshal(g[1], &h)
		f, err := strconv.ParseFloat(h, 64)
		if kind != "number" || err != nil || f != want {
			return fmt.Errorf("read %s %s, want number %v", kind, g[1], want)
		}
	default:
		return fmt.Errorf("unexpected type %T", w)
	}
	return nil
}

// keepExport copies the export to keep/tb and writes keep/expected.json
// for testdata/tb_accumulator_check.py, which reads the export with
// TensorBoard's own EventAccumulator where TensorBoard is installed: per
// run every step scalar and final metric (float32-rounded, as text), the
// hyperparameters and the test's identity of its configuration.
func keepExport(t *testing.T, logdir, keep string, trials []results.TrialRow, stepsOf map[string][]results.StepRow, notes map[string]results.Annotation) {
	t.Helper()
	if err := os.CopyFS(filepath.Join(keep, "tb"), os.DirFS(logdir)); err != nil {
		t.Fatal(err)
	}
	type point struct {
		Step  int64  `json:"step"`
		Value string `json:"value"` // the float32 as a float64's shortest text ("NaN", "+Inf" too)
	}
	type run struct {
		Scalars map[string][]point `json:"scalars"`
		HParams map[string]any     `json:"hparams"`
		Config  string             `json:"config"`
		Status  int                `json:"status"`
	}
	exp := map[string]run{}
	for i := range trials {
		r := &trials[i]
		m := map[string][]point{}
		var last int64
		for _, st := range stepsOf[r.TrialID] {
			tag := st.Split + "/" + st.Metric
			m[tag] = append(m[tag], point{st.Step, strconv.FormatFloat(float64(float32(st.Value)), 'g', -1, 64)})
			last = max(last, st.Step)
		}
		for col, w := range expectedFinals(r) {
			m[tracker.FinalPrefix+col] = []point{{last, strconv.FormatFloat(float64(float32(w)), 'g', -1, 64)}}
		}
		hp := expectedHParams(r)
		hp["tags"] = strings.Join(notes[r.TrialID].Tags, ",")
		exp[findRun(t, logdir, r.TrialID)] = run{m, hp, configIdentity(r), tracker.TBStatus(r.Status)}
	}
	b, err := json.MarshalIndent(map[string]any{"runs": exp}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keep, "expected.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("kept the export in %s/tb and its expected contents in %s/expected.json", keep, keep)
}

// findRun is the run folder (relative, slash-separated) whose name ends
// in _<id>.
func findRun(t *testing.T, logdir, id string) string {
	t.Helper()
	var found string
	filepath.WalkDir(logdir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasSuffix(d.Name(), "_"+id) {
			rel, _ := filepath.Rel(logdir, p)
			found = filepath.ToSlash(rel)
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no run folder for trial %s", id)
	}
	return found
}
