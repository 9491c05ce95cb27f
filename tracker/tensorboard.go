package tracker

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"peftbench/results"
)

// Host is the host part of every event file name: a fixed word, not the
// machine's name, so an export does not depend on where it ran.
const Host = "peftbench"

// The hparams plugin's tags and enums (tensorboard/plugins/hparams:
// metadata.py, api.proto).
const (
	tagExperiment   = "_hparams_/experiment"
	tagSessionStart = "_hparams_/session_start_info"
	tagSessionEnd   = "_hparams_/session_end_info"

	statusUnknown = 0
	statusSuccess = 1
	statusFailure = 2

	dataTypeString  = 1
	dataTypeBool    = 2
	dataTypeFloat64 = 3
)

// FinalPrefix prefixes the tags of a trial's final metrics.
const FinalPrefix = "final/"

// TBStatus is the hparams session status of a trial status: ok and
// stopped (not promoted by successive halving, yet a result) are
// successes; failed, diverged and timeout failures; cancelled unknown.
func TBStatus(status string) int {
	switch status {
	case results.StatusOK, results.StatusStopped:
		return statusSuccess
	case results.StatusFailed, results.StatusDiverged, results.StatusTimeout:
		return statusFailure
	}
	return statusUnknown
}

// EventFileName is the name of an event file of a run that started at t:
// events.out.tfevents.<unix seconds>.<Host>.
func EventFileName(t time.Time) string {
	return fmt.Sprintf("events.out.tfevents.%d.%s", unixSecs(t), Host)
}

func unixSecs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func secs(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMicro()) / 1e6
}

// TBRun is where a trial's events go: the run's folder relative to the
// log dir (sweep/label_id) and its group name.
type TBRun struct {
	Sweep, TrialID string
	Dir            string
	Group          string
}

// WriteTensorBoard writes sweeps as a TensorBoard log dir at out: per
// trial a run folder <sweep>/<label>_<trial id> with one event file
// (file version, the hparams session start, a text summary of the user's
// note, the step scalars as <split>/<metric>, the final metrics as
// final/<column> at the last step, the session end), and in out itself
// the hparams experiment over all of them. It refuses to overwrite an
// earlier export's files. It returns the runs written.
func WriteTensorBoard(out string, sweeps []*Sweep) ([]TBRun, error) {
	names := sweepDirNames(sweeps)
	var first time.Time
	for _, s := range sweeps {
		for _, t := range s.Trials {
			if !t.StartedAt.IsZero() && (first.IsZero() || t.StartedAt.Before(first)) {
				first = t.StartedAt
			}
		}
	}
	rootFile := filepath.Join(out, EventFileName(first))
	for _, p := range append([]string{rootFile}, joinAll(out, names)...) {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("tensorboard: %s exists (an earlier export?): remove it or choose another --out", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tensorboard: %w", err)
		}
	}
	annotated := false
	for _, s := range sweeps {
		for _, a := range s.Notes {
			annotated = annotated || len(a.Tags) > 0
		}
	}

	exp := newExperiment()
	var runs []TBRun
	for si, s := range sweeps {
		groups, of := s.Groups()
		for i := range s.Trials {
			t := &s.Trials[i]
			g := groups[of[i]]
			run := TBRun{
				Sweep: s.Name, TrialID: t.TrialID,
				Dir:   names[si] + "/" + safeName(s.TrialLabel(g, i)) + "_" + t.TrialID,
				Group: s.Name + "/" + g.Label + " #" + hashHex(8, g.Key),
			}
			hp := s.HParams(i)
			if annotated {
				hp = append(hp, Value{"tags", strings.Join(s.Notes[t.TrialID].Tags, ",")})
			}
			data := trialEvents(s, i, run.Group, hp)
			exp.add(hp, s.Metrics(i))
			dir := filepath.Join(out, filepath.FromSlash(run.Dir))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("tensorboard: %w", err)
			}
			if err := os.WriteFile(filepath.Join(dir, EventFileName(t.StartedAt)), data, 0o644); err != nil {
				return nil, fmt.Errorf("tensorboard: %w", err)
			}
			runs = append(runs, run)
		}
	}
	var root []byte
	root = appendRecord(root, fileVersion(secs(first)))
	root = appendRecord(root, event(secs(first), 0).sub(5, summary(hparamsValue(tagExperiment, exp.encode(secs(first))))))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	if err := os.WriteFile(rootFile, root, 0o644); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	return runs, nil
}

// trialEvents is the event file of trial i of s.
func trialEvents(s *Sweep, i int, group string, hp []Value) []byte {
	t := &s.Trials[i]
	start, end := secs(t.StartedAt), secs(t.EndedAt)
	if end < start {
		end = start
	}
	steps := s.Steps[t.TrialID]
	last := s.lastStep(i)
	// A step's wall time is interpolated between start and end: the
	// tables keep no per-step times.
	wall := func(step int64) float64 {
		if last <= 0 {
			return start
		}
		return start + (end-start)*float64(min(max(step, 0), last))/float64(last)
	}

	var b []byte
	b = appendRecord(b, fileVersion(start))
	b = appendRecord(b, event(start, 0).sub(5, summary(hparamsValue(tagSessionStart, sessionStart(hp, group, start)))))
	if note := s.Notes[t.TrialID].Note; note != "" {
		b = appendRecord(b, event(start, 0).sub(5, summary(textValue("note", note))))
	}
	for j := 0; j < len(steps); {
		k := j
		var sum msg
		for ; k < len(steps) && steps[k].Step == steps[j].Step; k++ {
			sum = sum.sub(1, scalarValue(steps[k].Split+"/"+steps[k].Metric, steps[k].Value))
		}
		b = appendRecord(b, event(wall(steps[j].Step), steps[j].Step).sub(5, sum))
		j = k
	}
	if ms := s.Metrics(i); len(ms) > 0 {
		var sum msg
		for _, m := range ms {
			sum = sum.sub(1, scalarValue(FinalPrefix+m.Name, m.V.(float64)))
		}
		b = appendRecord(b, event(end, last).sub(5, sum))
	}
	var endInfo msg
	if st := TBStatus(t.Status); st != statusUnknown {
		endInfo = endInfo.varint(1, uint64(st))
	}
	endInfo = endInfo.double(2, end)
	b = appendRecord(b, event(end, 0).sub(5, summary(hparamsValue(tagSessionEnd, msg(nil).sub(4, endInfo)))))
	return b
}

// event starts a tensorflow.Event: wall_time (1), step (2).
func event(wall float64, step int64) msg {
	var m msg
	if wall != 0 {
		m = m.double(1, wall)
	}
	if step != 0 {
		m = m.varint(2, uint64(step))
	}
	return m
}

// fileVersion is the first event of every file: file_version (3).
func fileVersion(wall float64) []byte { return event(wall, 0).str(3, "brain.Event:2") }

// summary is a Summary of one value (Summary.value = 1).
func summary(v msg) msg { return msg(nil).sub(1, v) }

// scalarValue is a Summary.Value with tag (1) and simple_value (2).
func scalarValue(tag string, v float64) msg {
	return msg(nil).str(1, tag).float(2, float32(v))
}

// nullTensor is the empty DT_FLOAT tensor of shape [0] that the Python
// hparams writer stores with its summaries (metadata.NULL_TENSOR):
// TensorProto{dtype = DT_FLOAT (1), tensor_shape (2) = {dim (2) = {size 0}}}.
var nullTensor = msg(nil).varint(1, 1).sub(2, msg(nil).sub(2, nil))

// pluginMetadata is a SummaryMetadata{plugin_data (1) = {plugin_name (1),
// content (2)}}.
func pluginMetadata(plugin string, content []byte) msg {
	pd := msg(nil).str(1, plugin)
	if len(content) > 0 {
		pd = pd.bytes(2, content)
	}
	return msg(nil).sub(1, pd)
}

// hparamsValue is a Summary.Value of the hparams plugin: tag (1), the
// null tensor (8), metadata (9) holding HParamsPluginData (its version,
// 0, not serialised) with one of its data fields already encoded.
func hparamsValue(tag string, data msg) msg {
	return msg(nil).str(1, tag).sub(8, nullTensor).sub(9, pluginMetadata("hparams", data))
}

// textValue is a Summary.Value of the text plugin: a scalar DT_STRING
// (7) tensor.
func textValue(tag, text string) msg {
	tensor := msg(nil).varint(1, 7).sub(2, nil).str(8, text)
	return msg(nil).str(1, tag).sub(8, tensor).sub(9, pluginMetadata("text", nil))
}

// protoValue is a google.protobuf.Value: number_value (2), string_value
// (3) or bool_value (4); a oneof, so written even when zero.
func protoValue(v any) msg {
	switch x := v.(type) {
	case int64:
		return msg(nil).double(2, float64(x))
	case float64:
		return msg(nil).double(2, x)
	case bool:
		b := uint64(0)
		if x {
			b = 1
		}
		return msg(nil).varint(4, b)
	case string:
		return msg(nil).str(3, x)
	}
	return msg(nil).str(3, fmt.Sprint(v))
}

// sessionStart is HParamsPluginData.session_start_info (3): hparams (1,
// map entries sorted by key), group_name (4), start_time_secs (5).
func sessionStart(hp []Value, group string, start float64) msg {
	sorted := slices.Clone(hp)
	slices.SortStableFunc(sorted, func(a, b Value) int { return cmp.Compare(a.Name, b.Name) })
	var info msg
	for _, v := range sorted {
		info = info.sub(1, msg(nil).str(1, v.Name).sub(2, protoValue(v.V)))
	}
	if group != "" {
		info = info.str(4, group)
	}
	if start != 0 {
		info = info.double(5, start)
	}
	return msg(nil).sub(3, info)
}

// experiment gathers the hparams and final metrics of every session.
type experiment struct {
	names   []string // hparams in first-seen order
	values  map[string][]any
	metrics []string // final metric columns in first-seen order
}

func newExperiment() *experiment { return &experiment{values: map[string][]any{}} }

func (e *experiment) add(hp, metrics []Value) {
	for _, v := range hp {
		if _, ok := e.values[v.Name]; !ok {
			e.names = append(e.names, v.Name)
		}
		e.values[v.Name] = append(e.values[v.Name], v.V)
	}
	for _, m := range metrics {
		if !slices.Contains(e.metrics, m.Name) {
			e.metrics = append(e.metrics, m.Name)
		}
	}
}

// encode is HParamsPluginData.experiment (2): time_created_secs (3),
// hparam_infos (4: name 1, type 4, domain_discrete 5 or domain_interval
// 6, differs 7) typed as TensorBoard types them (all numbers: FLOAT64
// with the interval; all bools: BOOL; else STRING, each with its distinct
// values), metric_infos (5: name 1 = {tag 2}) for the final/ tags.
func (e *experiment) encode(created float64) msg {
	var x msg
	if created != 0 {
		x = x.double(3, created)
	}
	for _, name := range e.names {
		vals := e.values[name]
		kinds := map[string]bool{}
		for _, v := range vals {
			switch v.(type) {
			case int64, float64:
				kinds["number"] = true
			case bool:
				kinds["bool"] = true
			default:
				kinds["string"] = true
			}
		}
		info := msg(nil).str(1, name)
		switch {
		case len(kinds) == 1 && kinds["number"]:
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, v := range vals {
				f := toFloat(v)
				lo, hi = min(lo, f), max(hi, f)
			}
			info = info.varint(4, dataTypeFloat64).sub(6, msg(nil).double(1, lo).double(2, hi))
			if lo != hi {
				info = info.varint(7, 1)
			}
		case len(kinds) == 1 && kinds["bool"]:
			seen := map[bool]bool{}
			for _, v := range vals {
				seen[v.(bool)] = true
			}
			var list msg
			for _, b := range []bool{false, true} {
				if seen[b] {
					list = list.sub(1, protoValue(b))
				}
			}
			info = info.varint(4, dataTypeBool).sub(5, list)
			if len(seen) > 1 {
				info = info.varint(7, 1)
			}
		default:
			var distinct []string
			for _, v := range vals {
				s := hparamString(v)
				if !slices.Contains(distinct, s) {
					distinct = append(distinct, s)
				}
			}
			slices.Sort(distinct)
			var list msg
			for _, s := range distinct {
				list = list.sub(1, protoValue(s))
			}
			info = info.varint(4, dataTypeString).sub(5, list)
			if len(distinct) > 1 {
				info = info.varint(7, 1)
			}
		}
		x = x.sub(4, info)
	}
	for _, m := range e.metrics {
		x = x.sub(5, msg(nil).sub(1, msg(nil).str(2, FinalPrefix+m)))
	}
	return msg(nil).sub(2, x)
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return math.NaN()
}

// hparamString is a value as a string domain entry.
func hparamString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// sweepDirNames are the sweeps' names as folder names, a suffix -2, -3,
// … on a repeat.
func sweepDirNames(sweeps []*Sweep) []string {
	var out []string
	for _, s := range sweeps {
		base := safeName(s.Name)
		name := base
		for n := 2; slices.Contains(out, name); n++ {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		out = append(out, name)
	}
	return out
}

func joinAll(dir string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out
}
