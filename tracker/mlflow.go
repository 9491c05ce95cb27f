package tracker

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"peftbench/internal/pyfmt"
	"peftbench/results"
)

// MLflow run statuses as meta.yaml stores them (mlflow.entities.RunStatus).
const (
	mlflowFinished = 3
	mlflowFailed   = 4
	mlflowKilled   = 5
)

// MLflowStatus is the run status of a trial status: ok and stopped
// FINISHED, cancelled KILLED, the rest FAILED.
func MLflowStatus(status string) int {
	switch status {
	case results.StatusOK, results.StatusStopped:
		return mlflowFinished
	case results.StatusCancelled:
		return mlflowKilled
	}
	return mlflowFailed
}

// The keys of an experiment's and a run's meta.yaml, in the order MLflow
// writes them (yaml.safe_dump sorts keys).
var (
	ExperimentMetaKeys = []string{"artifact_location", "creation_time", "experiment_id", "last_update_time", "lifecycle_stage", "name"}
	RunMetaKeys        = []string{"artifact_uri", "end_time", "entry_point_name", "experiment_id", "lifecycle_stage", "run_id", "run_name", "run_uuid", "source_name", "source_type", "source_version", "start_time", "status", "tags", "user_id"}
)

// User is the user_id of every exported run: fixed, not the login name,
// so an export does not depend on who ran it.
const User = "peftbench"

// MLRun is one exported MLflow run.
type MLRun struct {
	Experiment, ID string
	Name           string
	Parent         string // the parent run's ID; "" for a parent
	Sweep, TrialID string // TrialID "" for a parent
	Group          string // the group key's hash, shared by parent and children
}

// RunID is the MLflow run ID of a trial or (trialID "", groupKey set) of
// a configuration's parent run: 32 hex digits from a hash, as MLflow's
// uuid4().hex has.
func RunID(sweep, trialID, groupKey string) string {
	if trialID != "" {
		return hashHex(32, "mlflow run", sweep, trialID)
	}
	return hashHex(32, "mlflow parent run", sweep, groupKey)
}

// ExperimentID is the MLflow experiment ID of a sweep named name: a
// decimal integer from a hash of the name (MLflow's are random integers),
// never 0, the default experiment's.
func ExperimentID(name string) string {
	h, _ := strconv.ParseUint(hashHex(15, "mlflow experiment", name), 16, 64)
	return strconv.FormatUint(h%(1<<59)+1, 10)
}

// WriteMLflow writes sweeps as an MLflow file store at out/mlruns: the
// default experiment 0 and .trash/ as MLflow creates them, an experiment
// per sweep, in it a parent run per configuration across seeds (its
// params, its seeds' mean final metrics over ok trials) and a child run
// per trial (mlflow.parentRunId) with every hyperparameter as a param,
// the step metrics <split>/<metric> with their history, the final
// metrics at the last step, and tags: status, error, trial ID, method,
// task, the user's tags (peftbench.tag.<tag> = true) and note
// (mlflow.note.content); the trial's config is its artifact config.json.
// It refuses a non-empty out/mlruns.
func WriteMLflow(out string, sweeps []*Sweep) ([]MLRun, error) {
	root, err := filepath.Abs(filepath.Join(out, "mlruns"))
	if err != nil {
		return nil, fmt.Errorf("mlflow: %w", err)
	}
	if ents, err := os.ReadDir(root); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("mlflow: %s is not empty (an earlier export?): remove it or choose another --out", root)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("mlflow: %w", err)
	}
	w := &mlWriter{root: root}
	var first time.Time
	for _, s := range sweeps {
		for _, t := range s.Trials {
			if !t.StartedAt.IsZero() && (first.IsZero() || t.StartedAt.Before(first)) {
				first = t.StartedAt
			}
		}
	}
	w.mkdir(".trash")
	w.experiment("0", "Default", millis(first))

	names := experimentNames(sweeps)
	var runs []MLRun
	for si, s := range sweeps {
		exp := ExperimentID(names[si])
		created := time.Time{}
		for _, t := range s.Trials {
			if !t.StartedAt.IsZero() && (created.IsZero() || t.StartedAt.Before(created)) {
				created = t.StartedAt
			}
		}
		w.experiment(exp, names[si], millis(created))
		groups, of := s.Groups()
		parents := make([]string, len(groups))
		for gi, g := range groups {
			id := RunID(s.Name, "", g.Key)
			parents[gi] = id
			runs = append(runs, MLRun{Experiment: exp, ID: id, Name: g.Label, Sweep: s.Name, Group: hashHex(8, g.Key)})
			w.parentRun(s, exp, id, g)
		}
		for i := range s.Trials {
			t := &s.Trials[i]
			g := groups[of[i]]
			id := RunID(s.Name, t.TrialID, "")
			name := s.TrialLabel(g, i)
			runs = append(runs, MLRun{Experiment: exp, ID: id, Name: name, Parent: parents[of[i]],
				Sweep: s.Name, TrialID: t.TrialID, Group: hashHex(8, g.Key)})
			w.childRun(s, i, exp, id, name, parents[of[i]])
		}
	}
	if w.err != nil {
		return nil, w.err
	}
	return runs, nil
}

// mlWriter writes the store's files, keeping the first error.
type mlWriter struct {
	root string
	err  error
	made map[string]bool // folders made, so each is made once
}

func (w *mlWriter) mkdir(rel string) { w.mkdirAll(filepath.Join(w.root, filepath.FromSlash(rel))) }

func (w *mlWriter) mkdirAll(dir string) {
	if w.err != nil || w.made[dir] {
		return
	}
	if w.err = os.MkdirAll(dir, 0o755); w.err != nil {
		w.err = fmt.Errorf("mlflow: %w", w.err)
		return
	}
	if w.made == nil {
		w.made = map[string]bool{}
	}
	w.made[dir] = true
}

func (w *mlWriter) write(rel, content string) {
	if w.err != nil {
		return
	}
	p := filepath.Join(w.root, filepath.FromSlash(rel))
	w.mkdirAll(filepath.Dir(p))
	if w.err == nil {
		if w.err = os.WriteFile(p, []byte(content), 0o644); w.err != nil {
			w.err = fmt.Errorf("mlflow: %w", w.err)
		}
	}
}

// fileURI is a local path as MLflow's path_to_local_file_uri writes it.
func fileURI(path string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
}

func (w *mlWriter) experiment(id, name string, created int64) {
	w.write(id+"/meta.yaml", yamlMap([][2]string{
		{"artifact_location", yamlString(fileURI(filepath.Join(w.root, id)))},
		{"creation_time", strconv.FormatInt(created, 10)},
		{"experiment_id", yamlString(id)},
		{"last_update_time", strconv.FormatInt(created, 10)},
		{"lifecycle_stage", "active"},
		{"name", yamlString(name)},
	}))
}

// runMeta writes a run's meta.yaml and its metrics/, params/ and
// artifacts/ folders, as MLflow's create_run does.
func (w *mlWriter) runMeta(exp, id, name string, start, end int64, status int) {
	dir := exp + "/" + id
	w.write(dir+"/meta.yaml", yamlMap([][2]string{
		{"artifact_uri", yamlString(fileURI(filepath.Join(w.root, exp, id, "artifacts")))},
		{"end_time", strconv.FormatInt(end, 10)},
		{"entry_point_name", "''"},
		{"experiment_id", yamlString(exp)},
		{"lifecycle_stage", "active"},
		{"run_id", yamlString(id)},
		{"run_name", yamlString(name)},
		{"run_uuid", yamlString(id)},
		{"source_name", "''"},
		{"source_type", "4"},
		{"source_version", "''"},
		{"start_time", strconv.FormatInt(start, 10)},
		{"status", strconv.Itoa(status)},
		{"tags", "[]"},
		{"user_id", yamlString(User)},
	}))
	for _, sub := range []string{"metrics", "params", "artifacts", "tags"} {
		w.mkdir(dir + "/" + sub)
	}
}

// runTags are the tags every run has.
func runTags(name, source string) map[string]string {
	return map[string]string{
		"mlflow.runName":     name,
		"mlflow.user":        User,
		"mlflow.source.type": "LOCAL",
		"mlflow.source.name": source,
	}
}

func (w *mlWriter) tags(dir string, tags map[string]string) {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w.write(dir+"/tags/"+k, tags[k]) // no trailing newline, as MLflow
	}
}

func (w *mlWriter) params(dir string, hp []Value) {
	for _, v := range hp {
		w.write(dir+"/params/"+metricKey(v.Name), ParamString(v.V))
	}
}

func (w *mlWriter) parentRun(s *Sweep, exp, id string, g *Group) {
	var start, end time.Time
	status := mlflowFinished
	for _, i := range g.Trials {
		t := &s.Trials[i]
		if !t.StartedAt.IsZero() && (start.IsZero() || t.StartedAt.Before(start)) {
			start = t.StartedAt
		}
		if t.EndedAt.After(end) {
			end = t.EndedAt
		}
		switch st := MLflowStatus(t.Status); {
		case st == mlflowFailed:
			status = mlflowFailed
		case st == mlflowKilled && status != mlflowFailed:
			status = mlflowKilled
		}
	}
	dir := exp + "/" + id
	w.runMeta(exp, id, g.Label, millis(start), millis(end), status)
	// The parent's params are what its seeds share: every hyperparameter
	// but the seed.
	var hp []Value
	for _, v := range s.HParams(g.Trials[0]) {
		if v.Name != "seed" {
			hp = append(hp, v)
		}
	}
	w.params(dir, hp)
	// Its metrics are the mean of each final metric over its ok seeds.
	sums, counts := map[string]float64{}, map[string]int{}
	var order []string
	ok := 0
	for _, i := range g.Trials {
		if MLflowStatus(s.Trials[i].Status) != mlflowFinished {
			continue
		}
		ok++
		for _, m := range s.Metrics(i) {
			if _, seen := counts[m.Name]; !seen {
				order = append(order, m.Name)
			}
			sums[m.Name] += m.V.(float64)
			counts[m.Name]++
		}
	}
	for _, name := range order {
		w.write(dir+"/metrics/"+metricKey(name), metricLine(millis(end), sums[name]/float64(counts[name]), 0))
	}
	tags := runTags(g.Label, s.SweepFile)
	tags["peftbench.sweep"] = s.Name
	tags["peftbench.group"] = hashHex(8, g.Key)
	tags["peftbench.seeds"] = strconv.Itoa(len(g.Trials))
	tags["mlflow.note.content"] = fmt.Sprintf("A configuration across seeds: %d trials, %d ok; its metrics are the means over the ok ones.", len(g.Trials), ok)
	w.tags(dir, tags)
}

func (w *mlWriter) childRun(s *Sweep, i int, exp, id, name, parent string) {
	t := &s.Trials[i]
	dir := exp + "/" + id
	start, end := millis(t.StartedAt), millis(t.EndedAt)
	if end < start {
		end = start
	}
	w.runMeta(exp, id, name, start, end, MLflowStatus(t.Status))
	w.params(dir, s.HParams(i))

	steps := s.Steps[t.TrialID]
	last := s.lastStep(i)
	ts := func(step int64) int64 {
		if last <= 0 {
			return start
		}
		return start + int64(math.Round(float64(end-start)*float64(min(max(step, 0), last))/float64(last)))
	}
	hist := map[string]*strings.Builder{}
	var keys []string
	for _, r := range steps {
		k := metricKey(r.Split + "/" + r.Metric)
		b := hist[k]
		if b == nil {
			b = new(strings.Builder)
			hist[k] = b
			keys = append(keys, k)
		}
		b.WriteString(metricLine(ts(r.Step), r.Value, r.Step))
	}
	for _, k := range keys {
		w.write(dir+"/metrics/"+k, hist[k].String())
	}
	for _, m := range s.Metrics(i) {
		w.write(dir+"/metrics/"+metricKey(m.Name), metricLine(end, m.V.(float64), last))
	}

	tags := runTags(name, s.SweepFile)
	tags["mlflow.parentRunId"] = parent
	tags["peftbench.sweep"] = s.Name
	tags["peftbench.trial_id"] = t.TrialID
	tags["peftbench.status"] = t.Status
	tags["peftbench.method"] = t.Method
	tags["peftbench.task"] = t.Task
	tags["peftbench.host"] = t.Host
	if t.Error != "" {
		tags["peftbench.error"] = truncate(t.Error, maxTagValue)
	}
	a := s.Notes[t.TrialID]
	if len(a.Tags) > 0 {
		tags["peftbench.tags"] = strings.Join(a.Tags, ",")
		for _, tag := range a.Tags {
			tags["peftbench.tag."+metricKey(tag)] = "true"
		}
	}
	if a.Note != "" {
		tags["mlflow.note.content"] = a.Note
	}
	w.tags(dir, tags)
	if t.Config != "" {
		w.write(dir+"/artifacts/config.json", t.Config+"\n")
	}
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// metricLine is one line of a metric file, as MLflow's file store writes
// it: "<timestamp ms> <value> <step>\n", the value as Python's str(float).
func metricLine(ts int64, v float64, step int64) string {
	return strconv.FormatInt(ts, 10) + " " + pyfmt.Repr(v) + " " + strconv.FormatInt(step, 10) + "\n"
}

// ParamString is a hyperparameter's value as an MLflow param, as
// Python's str() of the value mlflow.log_param would get: integers in
// decimal, floats as pyfmt.Repr, bools True and False, strings (and lists'
// JSON text) as they are.
func ParamString(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return pyfmt.Repr(x)
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// keyUnsafe are the characters MLflow refuses in metric, param and tag
// keys (its validation allows word characters, "/", ".", "-", " ").
var keyUnsafe = regexp.MustCompile(`[^A-Za-z0-9_\-. /]`)

// metricKey makes name a valid MLflow key and file path: other
// characters become _, and empty, "." and ".." path parts _ too.
func metricKey(name string) string {
	parts := strings.Split(keyUnsafe.ReplaceAllString(name, "_"), "/")
	for i, p := range parts {
		if strings.Trim(p, ".") == "" {
			parts[i] = strings.Repeat("_", max(len(p), 1))
		}
	}
	return strings.Join(parts, "/")
}

// experimentNames are the sweeps' names, a suffix " (2)", … on a repeat:
// MLflow's experiment names are unique.
func experimentNames(sweeps []*Sweep) []string {
	var out []string
	for _, s := range sweeps {
		name := s.Name
		for n := 2; slices.Contains(out, name) || name == "Default"; n++ {
			name = fmt.Sprintf("%s (%d)", s.Name, n)
		}
		out = append(out, name)
	}
	return out
}

// yamlMap writes key: value lines; values are already YAML scalars.
func yamlMap(kv [][2]string) string {
	var b strings.Builder
	for _, p := range kv {
		b.WriteString(p[0] + ": " + p[1] + "\n")
	}
	return b.String()
}

// yamlPlain are the strings written plain unless they read as a number
// or a date (yamlNumber: PyYAML's int, float and timestamp resolvers).
var (
	yamlPlain  = regexp.MustCompile(`^[A-Za-z0-9_/][A-Za-z0-9_./:+-]*$`)
	yamlNumber = regexp.MustCompile(`^[-+]?(0b[01_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*(:[0-5]?[0-9])*)$|^[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?$|^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}`)
)

// yamlSpecial are plain words YAML 1.1 reads as something other than a
// string (PyYAML's bool and null resolvers).
var yamlSpecial = map[string]bool{
	"y": true, "n": true, "yes": true, "no": true, "true": true, "false": true,
	"on": true, "off": true, "null": true, "~": true,
}

// yamlString is s as a YAML scalar that reads back as the string s:
// plain where unambiguous, else single-quoted (' doubled), or
// double-quoted with escapes when it holds a line break or control
// character.
func yamlString(s string) string {
	if yamlPlain.MatchString(s) && !yamlNumber.MatchString(s) && !yamlSpecial[strings.ToLower(s)] && !strings.HasSuffix(s, ":") {
		return s
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 {
			return strconv.Quote(s) // YAML double quotes take Go's escapes for these
		}
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// maxTagValue is MLflow's limit on a tag value (5000 characters before
// MLflow 2.x raised it).
const maxTagValue = 5000

// truncate cuts s to at most n bytes at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
