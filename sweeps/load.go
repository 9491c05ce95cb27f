package sweeps

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"peftbench/internal/targets"
)

// Load reads, validates and expands the sweep file at path. Errors are
// *Error values (joined when there are several), each naming path:line:col
// and the key concerned.
func Load(path string, cat Catalog) (*Plan, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sweeps: %w", err)
	}
	return Parse(path, src, cat)
}

// Parse is Load for a sweep held in memory; file names it in errors and
// supplies the default sweep name.
func Parse(file string, src []byte, cat Catalog) (*Plan, error) {
	var raw map[string]any
	if _, err := toml.NewDecoder(strings.NewReader(string(src))).Decode(&raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line, col := lineCol(src, pe.Position)
			return nil, &Error{File: file, Line: line, Col: col, Key: pe.LastKey, Msg: pe.Message}
		}
		return nil, &Error{File: file, Msg: err.Error()}
	}
	d := &decoder{
		cat: cat,
		es:  &errs{file: file, ps: scanPositions(string(src))},
	}
	sum := sha256.Sum256(src)
	p := &Plan{
		File:       file,
		Source:     string(src),
		SourceHash: hex.EncodeToString(sum[:]),
	}
	sp := d.spec(raw, file, p)
	if !d.es.empty() {
		return nil, d.es.err()
	}
	p.Name, p.Description = sp.name, sp.description
	p.Trials = d.expand(sp, p)
	d.checkRungs(p.EarlyStopping, p.Trials)
	if p.Protocol != nil && d.es.empty() {
		d.tuneGroups(sp, p)
	}
	if !d.es.empty() {
		return nil, d.es.err()
	}
	if len(p.Trials) == 0 {
		d.es.atKey("grid", "the sweep has no trials (every combination was excluded)")
		return nil, d.es.err()
	}
	p.Warnings = append(p.Warnings, d.warnings...)
	return p, nil
}

// lineCol returns a parse error's line and column, recomputing the column
// from the byte offset: BurntSushi/toml v1.6.0 counts it from the previous
// line when the error is at the start of a line.
func lineCol(src []byte, p toml.Position) (int, int) {
	if p.Start < 0 || p.Start > len(src) {
		return p.Line, p.Col
	}
	line := 1 + strings.Count(string(src[:p.Start]), "\n")
	if line != p.Line {
		return p.Line, p.Col
	}
	return line, p.Start - strings.LastIndexByte(string(src[:p.Start]), '\n')
}

// setting is a value from the sweep file and the key path that set it.
type setting struct {
	val  any
	path string
}

// axis is a grid dimension: a key and its values.
type axis struct {
	key  string
	vals []setting
}

// spec is a sweep file decoded and checked key by key, before expansion.
type spec struct {
	name, description string
	seeds             []setting
	methods, tasks    []setting
	ranks             []setting
	extras            []axis // other grid axes, sorted by key
	defaults          []keyed
	methodTabs        map[string][]keyed
	methodRanks       map[string][]setting
	taskTabs          map[string][]keyed
	includes          []include
	excludes          []exclude
	trainer           TrainerSpec
	phase             string    // the trials' Phase: PhaseSearch in a tune sweep
	points            [][]keyed // [search] points, crossed with the grid
}

// keyed is one key = value of a settings table.
type keyed struct {
	key string
	setting
}

// include adds trials: each key holds one or more values; keys it does not
// name take the grid's values.
type include struct {
	path string
	axes map[string][]setting
}

// exclude removes grid trials whose coordinates match every key.
type exclude struct {
	path    string
	match   map[string][]setting
	matched int
}

type decoder struct {
	cat      Catalog
	es       *errs
	warnings []string
}

func (d *decoder) warn(path, format string, args ...any) {
	p := d.es.ps.key(path)
	d.warnings = append(d.warnings, fmt.Sprintf("%s:%d:%d: %s: %s", d.es.file, p.line, p.col, path, fmt.Sprintf(format, args...)))
}

var topKeys = []string{"name", "description", "seeds", "grid", "defaults", "method", "task", "include", "exclude", "resources", "executor", "trainer", "analysis", "search", "early_stopping", "protocol"}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// MaxNameLen is the longest sweep name, in bytes: the name is a folder of
// the results tree (results/<name>/trials/<id>/…), so it stays far below
// the 255 bytes a file name may have on common file systems.
const MaxNameLen = 100

func (d *decoder) spec(raw map[string]any, file string, p *Plan) *spec {
	sp := &spec{methodTabs: map[string][]keyed{}, methodRanks: map[string][]setting{}, taskTabs: map[string][]keyed{}}
	d.unknownKeys(raw, "", topKeys)

	sp.name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	if v, ok := raw["name"]; ok {
		if s, ok := d.str("name", v); ok {
			sp.name = s
		}
	}
	switch {
	case !nameRE.MatchString(sp.name):
		d.es.atVal("name", "sweep name %q must be letters, digits, '.', '_' or '-' (it names the results folder)", sp.name)
	case len(sp.name) > MaxNameLen:
		d.es.atVal("name", "sweep name %.20q… is %d bytes, longer than %d (it names the results folder)", sp.name, len(sp.name), MaxNameLen)
	}
	if v, ok := raw["description"]; ok {
		sp.description, _ = d.str("description", v)
	}

	if p.Protocol = d.protocol(raw, sp); p.Protocol == nil {
		d.seeds(raw, sp)
	}
	d.grid(raw, sp)
	if v, ok := d.table(raw, "defaults"); ok {
		sp.defaults = d.settings("defaults", v, nil)
	}
	d.methodTables(raw, sp)
	d.taskTables(raw, sp)
	d.includes(raw, sp)
	p.Search, sp.points = d.search(raw, sp)
	if p.Protocol != nil {
		d.tuneAxes(sp, p.Protocol)
	}
	d.rankAxes(sp)
	d.excludes(raw, sp)
	p.Resources = d.resources(raw)
	p.Executor = d.executor(raw)
	p.Trainer = d.trainer(raw)
	sp.trainer = p.Trainer
	p.Analysis = d.analysis(raw, p.Trainer)
	p.EarlyStopping = d.earlyStopping(raw, p.Executor)
	return sp
}

// unknownKeys reports keys of m (at path) not in valid.
func (d *decoder) unknownKeys(m map[string]any, path string, valid []string) {
	for _, k := range sortedKeys(m) {
		if !slices.Contains(valid, k) {
			d.es.atKey(join(path, k), "unknown key%s; valid keys: %s", didYouMean(k, valid), strings.Join(valid, ", "))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// table returns raw[key] as a table, reporting a wrong type.
func (d *decoder) table(raw map[string]any, key string) (map[string]any, bool) {
	v, ok := raw[key]
	if !ok {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.es.atVal(key, "want a table, got %s", typeName(v))
		return nil, false
	}
	return m, true
}

func (d *decoder) str(path string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.es.atVal(path, "want a string, got %s", typeName(v))
	}
	return s, ok
}

func (d *decoder) int(path string, v any, min int64) (int, bool) {
	n, msg := asInt(v)
	if msg == "" && n < min {
		if min == 0 {
			msg = fmt.Sprintf("must not be negative, got %d", n)
		} else {
			msg = fmt.Sprintf("must be at least %d, got %d", min, n)
		}
	}
	if msg != "" {
		d.es.atVal(path, "%s", msg)
		return 0, false
	}
	return int(n), true
}

// list returns v's elements as settings; a scalar is a list of one.
func list(path string, v any) []setting {
	switch v := v.(type) {
	case []any:
		out := make([]setting, len(v))
		for i, e := range v {
			out[i] = setting{e, index(path, i)}
		}
		return out
	}
	return []setting{{v, path}}
}

func (d *decoder) seeds(raw map[string]any, sp *spec) {
	v, ok := raw["seeds"]
	if !ok {
		d.es.atKey("", "missing key \"seeds\" (a list of seeds, or a count: seeds = 3 means 0, 1, 2)")
		return
	}
	if n, isInt := v.(int64); isInt {
		if n <= 0 || n > maxCombos {
			d.es.atVal("seeds", "seed count must be in [1, %d], got %d", maxCombos, n)
			return
		}
		for i := range n {
			sp.seeds = append(sp.seeds, setting{i, "seeds"})
		}
	} else {
		if _, isList := v.([]any); !isList {
			d.es.atVal("seeds", "want a list of integer seeds or a count, got %s", typeName(v))
			return
		}
		seen := map[int64]bool{}
		for _, s := range list("seeds", v) {
			n, msg := asInt(s.val)
			if msg != "" {
				d.es.atVal(s.path, "seed: %s", msg)
				continue
			}
			if seen[n] {
				d.es.atVal(s.path, "duplicate seed %d", n)
				continue
			}
			seen[n] = true
			sp.seeds = append(sp.seeds, setting{n, s.path})
		}
		if len(v.([]any)) == 0 {
			d.es.atVal("seeds", "empty seed list")
		}
	}
	if n := len(sp.seeds); n > 0 && n < 3 {
		d.warn("seeds", "%d seed(s): too few for confidence intervals or significance tests; use at least 3", n)
	}
}

func (d *decoder) grid(raw map[string]any, sp *spec) {
	g, ok := d.table(raw, "grid")
	if !ok {
		if _, present := raw["grid"]; !present {
			d.es.atKey("", "missing table [grid] (at least method and task)")
		}
		return
	}
	sp.methods = d.names(g, "grid", "method", d.cat.Methods())
	sp.tasks = d.names(g, "grid", "task", d.cat.Tasks())
	if v, ok := g["rank"]; ok {
		sp.ranks = d.ranks("grid.rank", v)
	}
	for _, k := range sortedKeys(g) {
		if k == "method" || k == "task" || k == "rank" {
			continue
		}
		path := join("grid", k)
		vals := d.axisValues(path, k, g[k])
		if len(vals) == 0 {
			d.es.atVal(path, "empty axis: a grid axis needs at least one value")
			continue
		}
		sp.extras = append(sp.extras, axis{k, vals})
	}
}

// names decodes a list of method or task names, checking each against the
// registry.
func (d *decoder) names(m map[string]any, table, key string, valid []string) []setting {
	path := join(table, key)
	v, ok := m[key]
	if !ok {
		d.es.atKey(table, "missing key %q", key)
		return nil
	}
	vals := list(path, v)
	if len(vals) == 0 {
		d.es.atVal(path, "empty %s list", key)
	}
	var out []setting
	seen := map[string]bool{}
	for _, s := range vals {
		name, ok := s.val.(string)
		if !ok {
			d.es.atVal(s.path, "want a %s name, got %s", key, typeName(s.val))
			continue
		}
		if !slices.Contains(valid, name) {
			d.es.atVal(s.path, "unknown %s %q%s", key, name, didYouMean(name, valid))
			continue
		}
		if seen[name] {
			d.es.atVal(s.path, "duplicate %s %q", key, name)
			continue
		}
		seen[name] = true
		out = append(out, s)
	}
	return out
}

func (d *decoder) ranks(path string, v any) []setting {
	vals := list(path, v)
	if len(vals) == 0 {
		d.es.atVal(path, "empty rank list")
	}
	var out []setting
	seen := map[int64]bool{}
	for _, s := range vals {
		n, msg := asInt(s.val)
		if msg == "" && n <= 0 {
			msg = fmt.Sprintf("rank must be positive, got %d", n)
		}
		if msg != "" {
			d.es.atVal(s.path, "%s", msg)
			continue
		}
		if seen[n] {
			d.es.atVal(s.path, "duplicate rank %d", n)
			continue
		}
		seen[n] = true
		out = append(out, setting{int(n), s.path})
	}
	return out
}

// axisValues decodes the values of a non-structural axis: trainer keys are
// checked now; method and task options when trials resolve.
func (d *decoder) axisValues(path, key string, v any) []setting {
	var out []setting
	for _, s := range list(path, v) {
		if val, ok := d.value(s.path, key, s.val); ok {
			out = append(out, setting{val, s.path})
		}
	}
	return out
}

// value checks one value of key: trainer keys fully, option values for
// being TOML scalars or arrays of them.
func (d *decoder) value(path, key string, v any) (any, bool) {
	if a, ok := v.([]any); ok && key == "targets" {
		for i, e := range a {
			if p, ok := e.(string); ok {
				if _, err := targets.Compile(p); err != nil {
					d.es.atVal(index(path, i), "%v", err)
					return nil, false
				}
			}
		}
	}
	if isTrainKey(key) {
		val, msg := checkTrain(key, v)
		if msg != "" {
			d.es.atVal(path, "%s", msg)
			return nil, false
		}
		return val, true
	}
	switch v.(type) {
	case map[string]any, []map[string]any:
		d.es.atVal(path, "want a value, got a table")
		return nil, false
	}
	return v, true
}

// settings decodes a table of trainer keys and options. valid, when not
// nil, lists the option keys allowed besides the trainer keys.
func (d *decoder) settings(path string, m map[string]any, valid []string) []keyed {
	var out []keyed
	for _, k := range sortedKeys(m) {
		kp := join(path, k)
		if valid != nil && !isTrainKey(k) && !slices.Contains(valid, k) {
			all := append(slices.Clone(trainKeys), valid...)
			d.es.atKey(kp, "unknown key%s; valid keys: %s", didYouMean(k, all), strings.Join(all, ", "))
			continue
		}
		if _, isList := m[k].([]any); isList && k != "targets" && path == "defaults" {
			d.es.atVal(kp, "want a single value; put lists of values under [grid]")
			continue
		}
		if v, ok := d.value(kp, k, m[k]); ok {
			out = append(out, keyed{k, setting{v, kp}})
		}
	}
	return out
}

func (d *decoder) methodTables(raw map[string]any, sp *spec) {
	t, ok := d.table(raw, "method")
	if !ok {
		return
	}
	inGrid := map[string]bool{}
	for _, s := range sp.methods {
		inGrid[s.val.(string)] = true
	}
	for _, name := range sortedKeys(t) {
		path := join("method", name)
		if !slices.Contains(d.cat.Methods(), name) {
			d.es.atKey(path, "unknown method %q%s", name, didYouMean(name, d.cat.Methods()))
			continue
		}
		m, ok := t[name].(map[string]any)
		if !ok {
			d.es.atVal(path, "want a table, got %s", typeName(t[name]))
			continue
		}
		if !inGrid[name] && !d.inIncludes(raw, name) {
			d.warn(path, "method %q is in no trial of this sweep", name)
		}
		if r, ok := m["rank"]; ok {
			if !d.cat.HasRank(name) {
				d.es.atKey(join(path, "rank"), "method %q has no rank axis (see `bench methods`); remove rank here", name)
			} else {
				sp.methodRanks[name] = d.ranks(join(path, "rank"), r)
			}
			m = withoutKey(m, "rank")
		}
		sp.methodTabs[name] = d.settings(path, m, nonNil(d.cat.MethodOptions(name)))
	}
}

func (d *decoder) taskTables(raw map[string]any, sp *spec) {
	t, ok := d.table(raw, "task")
	if !ok {
		return
	}
	inGrid := map[string]bool{}
	for _, s := range sp.tasks {
		inGrid[s.val.(string)] = true
	}
	for _, name := range sortedKeys(t) {
		path := join("task", name)
		if !slices.Contains(d.cat.Tasks(), name) {
			d.es.atKey(path, "unknown task %q%s", name, didYouMean(name, d.cat.Tasks()))
			continue
		}
		m, ok := t[name].(map[string]any)
		if !ok {
			d.es.atVal(path, "want a table, got %s", typeName(t[name]))
			continue
		}
		if !inGrid[name] && !d.inIncludes(raw, name) {
			d.warn(path, "task %q is in no trial of this sweep", name)
		}
		sp.taskTabs[name] = d.settings(path, m, nonNil(d.cat.TaskOptions(name)))
	}
}

// inIncludes reports whether any [[include]] names name as method or task.
func (d *decoder) inIncludes(raw map[string]any, name string) bool {
	for _, t := range tables(raw["include"]) {
		for _, k := range []string{"method", "task"} {
			for _, s := range list("", t[k]) {
				if s.val == name {
					return true
				}
			}
		}
	}
	return false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func withoutKey(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// tables returns the elements of an array of tables, however written.
func tables(v any) []map[string]any {
	switch v := v.(type) {
	case []map[string]any:
		return v
	case []any:
		var out []map[string]any
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// arrayOfTables checks that raw[key] is an array of tables.
func (d *decoder) arrayOfTables(raw map[string]any, key string) []map[string]any {
	v, ok := raw[key]
	if !ok {
		return nil
	}
	ts := tables(v)
	n := 0
	if a, ok := v.([]any); ok {
		n = len(a)
	} else if a, ok := v.([]map[string]any); ok {
		n = len(a)
	}
	if n == 0 || len(ts) != n {
		d.es.atVal(key, "want an array of tables ([[%s]]), got %s", key, typeName(v))
		return nil
	}
	return ts
}

func (d *decoder) includes(raw map[string]any, sp *spec) {
	for i, t := range d.arrayOfTables(raw, "include") {
		path := index("include", i)
		inc := include{path: path, axes: map[string][]setting{}}
		if len(t) == 0 {
			d.es.atKey(path, "empty include")
			continue
		}
		for _, k := range sortedKeys(t) {
			kp := join(path, k)
			var vals []setting
			switch k {
			case "method":
				vals = d.names(t, path, k, d.cat.Methods())
			case "task":
				vals = d.names(t, path, k, d.cat.Tasks())
			case "rank":
				vals = d.ranks(kp, t[k])
			case "seed":
				for _, s := range list(kp, t[k]) {
					if n, msg := asInt(s.val); msg != "" {
						d.es.atVal(s.path, "seed: %s", msg)
					} else {
						vals = append(vals, setting{n, s.path})
					}
				}
			default:
				vals = d.axisValues(kp, k, t[k])
			}
			if len(vals) == 0 {
				continue // reported
			}
			inc.axes[k] = vals
		}
		sp.includes = append(sp.includes, inc)
	}
}

// rankAxes refuses a rank axis that no method it applies to has: the grid's
// rank when every grid method is rank-less, an include's rank when one of
// the include's methods (its own, else the grid's) is rank-less. A grid
// that mixes rank-less methods with ranked ones keeps its rank axis for
// the ranked ones.
func (d *decoder) rankAxes(sp *spec) {
	hasRank := func(m setting) bool {
		name, _ := m.val.(string)
		return d.cat.HasRank(name)
	}
	if len(sp.ranks) > 0 && len(sp.methods) > 0 && !slices.ContainsFunc(sp.methods, hasRank) {
		d.es.atKey("grid.rank", "no method of the grid has a rank axis (see `bench methods`); remove rank")
	}
	for _, inc := range sp.includes {
		if _, ok := inc.axes["rank"]; !ok {
			continue
		}
		methods, own := inc.axes["method"]
		if !own {
			methods = sp.methods
		}
		for _, m := range methods {
			if !hasRank(m) {
				d.es.atKey(join(inc.path, "rank"), "method %q has no rank axis (see `bench methods`); remove rank here", m.val)
			}
		}
	}
}

func (d *decoder) excludes(raw map[string]any, sp *spec) {
	axes := []string{"method", "task", "rank", "seed"}
	for _, a := range sp.extras {
		axes = append(axes, a.key)
	}
	for i, t := range d.arrayOfTables(raw, "exclude") {
		path := index("exclude", i)
		ex := exclude{path: path, match: map[string][]setting{}}
		if len(t) == 0 {
			d.es.atKey(path, "empty exclude would remove every trial")
			continue
		}
		for _, k := range sortedKeys(t) {
			kp := join(path, k)
			if !slices.Contains(axes, k) {
				d.es.atKey(kp, "not a grid axis%s; exclude matches on: %s", didYouMean(k, axes), strings.Join(axes, ", "))
				continue
			}
			vals := list(kp, t[k])
			if k == "rank" {
				vals = d.ranks(kp, t[k])
			}
			ex.match[k] = vals
		}
		sp.excludes = append(sp.excludes, ex)
	}
}

var resourceKeys = []string{"workers", "threads_per_trial", "gpus", "gpus_per_trial", "timeout", "retries"}

func (d *decoder) resources(raw map[string]any) Resources {
	var r Resources
	t, ok := d.table(raw, "resources")
	if !ok {
		return r
	}
	d.unknownKeys(t, "resources", resourceKeys)
	if v, ok := t["workers"]; ok {
		r.Workers, _ = d.int("resources.workers", v, 0)
	}
	if v, ok := t["threads_per_trial"]; ok {
		r.ThreadsPerTrial, _ = d.int("resources.threads_per_trial", v, 0)
	}
	if v, ok := t["retries"]; ok {
		r.Retries, _ = d.int("resources.retries", v, 0)
	}
	if v, ok := t["timeout"]; ok {
		var msg string
		if r.Timeout, msg = checkDuration(v); msg != "" {
			d.es.atVal("resources.timeout", "%s", msg)
		}
	}
	if v, ok := t["gpus"]; ok {
		switch g := v.(type) {
		case string:
			if g != "auto" {
				d.es.atVal("resources.gpus", "want \"auto\" or a list of device ids, got %q", g)
			}
			r.GPUsAuto = true
		case []any:
			seen := map[string]bool{}
			for _, s := range list("resources.gpus", g) {
				var id string
				switch x := s.val.(type) {
				case int64:
					id = strconv.FormatInt(x, 10)
				case string:
					id = x
				default:
					d.es.atVal(s.path, "want a device id (integer or string), got %s", typeName(x))
					continue
				}
				if seen[id] {
					d.es.atVal(s.path, "duplicate GPU %q", id)
				}
				seen[id] = true
				r.GPUs = append(r.GPUs, id)
			}
		default:
			d.es.atVal("resources.gpus", "want \"auto\" or a list of device ids, got %s", typeName(v))
		}
	}
	if v, ok := t["gpus_per_trial"]; ok {
		r.GPUsPerTrial, _ = d.int("resources.gpus_per_trial", v, 0)
		switch {
		case r.GPUsPerTrial > 0 && len(r.GPUs) == 0 && !r.GPUsAuto:
			d.es.atVal("resources.gpus_per_trial", "%d GPUs per trial but no gpus listed (set gpus = [...] or \"auto\")", r.GPUsPerTrial)
		case len(r.GPUs) > 0 && r.GPUsPerTrial > len(r.GPUs):
			d.es.atVal("resources.gpus_per_trial", "%d GPUs per trial but only %d listed in gpus", r.GPUsPerTrial, len(r.GPUs))
		}
	} else if len(r.GPUs) > 0 || r.GPUsAuto {
		r.GPUsPerTrial = 1
	}
	return r
}

var executorKeys = []string{"kind", "partition", "time_limit", "cpus_per_task", "mem_per_task", "gpus_per_task", "throttle", "sbatch_args", "setup", "poll_every"}

func (d *decoder) executor(raw map[string]any) Executor {
	e := Executor{Kind: "local"}
	t, ok := d.table(raw, "executor")
	if !ok {
		return e
	}
	d.unknownKeys(t, "executor", executorKeys)
	if v, ok := t["kind"]; ok {
		if s, ok := d.str("executor.kind", v); ok {
			if kinds := d.cat.Executors(); !slices.Contains(kinds, s) {
				d.es.atVal("executor.kind", "unknown executor %q%s; valid: %s", s, didYouMean(s, kinds), strings.Join(kinds, ", "))
			}
			e.Kind = s
		}
	}
	str := func(key string, dst *string) {
		if v, ok := t[key]; ok {
			*dst, _ = d.str(join("executor", key), v)
		}
	}
	num := func(key string, dst *int) {
		if v, ok := t[key]; ok {
			*dst, _ = d.int(join("executor", key), v, 0)
		}
	}
	str("partition", &e.Partition)
	str("time_limit", &e.TimeLimit)
	str("mem_per_task", &e.MemPerTask)
	str("setup", &e.Setup)
	num("cpus_per_task", &e.CPUsPerTask)
	num("gpus_per_task", &e.GPUsPerTask)
	num("throttle", &e.Throttle)
	if v, ok := t["sbatch_args"]; ok {
		e.SbatchArgs = d.strings("executor.sbatch_args", v)
	}
	if v, ok := t["poll_every"]; ok {
		var msg string
		if e.PollEvery, msg = checkDuration(v); msg != "" {
			d.es.atVal("executor.poll_every", "%s", msg)
		}
	}
	if e.Kind == "local" {
		for _, k := range executorKeys[1:] {
			if _, ok := t[k]; ok {
				d.warn(join("executor", k), "only used by kind = \"slurm\"; ignored by the local executor")
			}
		}
	}
	return e
}

func (d *decoder) strings(path string, v any) []string {
	a, ok := v.([]any)
	if !ok {
		d.es.atVal(path, "want a list of strings, got %s", typeName(v))
		return nil
	}
	out := []string{}
	for _, s := range list(path, a) {
		if x, ok := d.str(s.path, s.val); ok {
			out = append(out, x)
		}
	}
	return out
}

func (d *decoder) trainer(raw map[string]any) TrainerSpec {
	tr := TrainerSpec{Kind: "builtin"}
	t, ok := d.table(raw, "trainer")
	if !ok {
		return tr
	}
	d.unknownKeys(t, "trainer", []string{"kind", "command", "env"})
	if v, ok := t["kind"]; ok {
		if s, ok := d.str("trainer.kind", v); ok {
			if kinds := []string{"builtin", "command"}; !slices.Contains(kinds, s) {
				d.es.atVal("trainer.kind", "unknown trainer %q%s; valid: builtin, command", s, didYouMean(s, kinds))
			}
			tr.Kind = s
		}
	}
	if v, ok := t["command"]; ok {
		tr.Command = d.strings("trainer.command", v)
		if tr.Kind == "builtin" {
			d.es.atKey("trainer.command", "a command needs kind = \"command\"")
		}
	}
	if tr.Kind == "command" && len(tr.Command) == 0 {
		d.es.atKey("trainer", "kind = \"command\" needs command = [\"program\", \"args\", ...]")
	}
	if v, ok := t["env"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			d.es.atVal("trainer.env", "want a table of strings, got %s", typeName(v))
		}
		if len(m) > 0 {
			tr.Env = map[string]string{}
		}
		for _, k := range sortedKeys(m) {
			if s, ok := d.str(join("trainer.env", k), m[k]); ok {
				tr.Env[k] = s
			}
		}
	}
	return tr
}

func (d *decoder) analysis(raw map[string]any, tr TrainerSpec) Analysis {
	a := Analysis{Epsilons: []float64{0.5}, TopK: 10}
	t, ok := d.table(raw, "analysis")
	if !ok {
		return a
	}
	d.unknownKeys(t, "analysis", []string{"spectra", "epsilons", "top_k", "mitigate_intruders"})
	if v, ok := t["mitigate_intruders"]; ok {
		a.MitigateIntruders = d.mitigation(v, tr)
	}
	if v, ok := t["spectra"]; ok {
		if b, ok := v.(bool); ok {
			a.Spectra = b
		} else {
			d.es.atVal("analysis.spectra", "want a boolean, got %s", typeName(v))
		}
	}
	if v, ok := t["epsilons"]; ok {
		a.Epsilons = nil
		if _, ok := v.([]any); !ok {
			d.es.atVal("analysis.epsilons", "want a list of numbers in (0, 1], got %s", typeName(v))
		}
		for _, s := range list("analysis.epsilons", v) {
			x, msg := asFloat(s.val)
			if msg == "" && !(x > 0 && x <= 1) {
				msg = fmt.Sprintf("must be in (0, 1], got %v", x)
			}
			if msg != "" {
				d.es.atVal(s.path, "%s", msg)
				continue
			}
			a.Epsilons = append(a.Epsilons, x)
		}
		if len(a.Epsilons) == 0 {
			d.es.atVal("analysis.epsilons", "empty list")
		}
	}
	if v, ok := t["top_k"]; ok {
		a.TopK, _ = d.int("analysis.top_k", v, 1)
	}
	return a
}

// mitigation reads [analysis] mitigate_intruders = {lambda = 0.75} (HF
// PEFT's reduce_intruder_dimension arguments: lambda, a number or a list of
// numbers in [0, 1], threshold_epsilon in (0, 1], default 0.5, top_k ≥ 1,
// default 10): one IntruderMitigation per lambda.
func (d *decoder) mitigation(v any, tr TrainerSpec) []IntruderMitigation {
	const path = "analysis.mitigate_intruders"
	t, ok := v.(map[string]any)
	if !ok {
		d.es.atVal(path, "want a table such as {lambda = 0.75}, got %s", typeName(v))
		return nil
	}
	d.unknownKeys(t, path, []string{"lambda", "threshold_epsilon", "top_k"})
	if tr.Kind == "command" {
		d.es.atKey(path, "needs the builtin trainer: it changes the model between training and evaluation, which an external trainer does not do")
	}
	eps, k := 0.5, 10
	if v, ok := t["threshold_epsilon"]; ok {
		x, msg := asFloat(v)
		if msg == "" && !(x > 0 && x <= 1) {
			msg = fmt.Sprintf("must be in (0, 1], got %v", x)
		}
		if msg != "" {
			d.es.atVal(join(path, "threshold_epsilon"), "%s", msg)
		}
		eps = x
	}
	if v, ok := t["top_k"]; ok {
		k, _ = d.int(join(path, "top_k"), v, 1)
	}
	lv, ok := t["lambda"]
	if !ok {
		d.es.atKey(path, "missing lambda (the share of each intruder direction kept, in [0, 1]; HF PEFT's default 0.75)")
		return nil
	}
	var ms []IntruderMitigation
	for _, s := range list(join(path, "lambda"), lv) {
		x, msg := asFloat(s.val)
		if msg == "" && !(x >= 0 && x <= 1) {
			msg = fmt.Sprintf("must be in [0, 1], got %v", x)
		}
		if msg != "" {
			d.es.atVal(s.path, "%s", msg)
			continue
		}
		ms = append(ms, IntruderMitigation{Lambda: x, Epsilon: eps, TopK: k})
	}
	if len(ms) == 0 {
		d.es.atVal(join(path, "lambda"), "empty list")
	}
	return ms
}
