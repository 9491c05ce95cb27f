package sweeps

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// combo is one point of the expanded grid before resolution.
type combo struct {
	seed, method, task setting
	rank               *setting // nil for methods without a rank
	vals               []keyed  // other axes, by key
	origin             string   // "" for the grid, else the include's path
}

// expand turns a checked spec into trials, in plan order: grid trials
// (seed, method, task, rank, then other axes by key name, each in file
// order), then include trials in file order. Trials with equal IDs are
// kept once, first occurrence first.
func (d *decoder) expand(sp *spec, p *Plan) []Trial {
	if n := sp.size(d.cat); n > maxCombos {
		d.es.atKey("grid", "the sweep expands to more than %d trials (%.3g); split it", maxCombos, n)
		return nil
	}
	var combos []combo
	d.product(sp, nil, func(c combo) {
		for i := range sp.excludes {
			if sp.excludes[i].matches(c) {
				sp.excludes[i].matched++
				return
			}
		}
		combos = append(combos, c)
	})
	for _, ex := range sp.excludes {
		if ex.matched == 0 {
			d.warn(ex.path, "matches no trial of the grid")
		}
	}
	for i := range sp.includes {
		d.product(sp, &sp.includes[i], func(c combo) { combos = append(combos, c) })
	}
	if !d.es.empty() {
		return nil
	}

	r := &resolver{d: d, sp: sp, used: map[string]bool{}, methodCache: map[string]cached{}, taskCache: map[string]cached{}, layerCache: map[string]cachedLayers{}}
	var trials []Trial
	seen := map[string]bool{}
	added := map[string]int{}
	for _, c := range combos {
		t, ok := r.resolve(c)
		if !ok || seen[t.ID] {
			continue
		}
		seen[t.ID] = true
		added[c.origin]++
		t.Sweep = p.Name
		t.Index = len(trials)
		trials = append(trials, t)
		// [analysis] mitigate_intruders: the same trial once more per
		// mitigation, right after the plain one.
		for _, m := range p.Analysis.MitigateIntruders {
			mt := t
			mt.MitigateIntruders = &m
			id, err := trialID(mt, sp.trainer)
			if err != nil {
				d.es.atKey("analysis.mitigate_intruders", "%v", err)
				continue
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			mt.ID, mt.Index = id, len(trials)
			trials = append(trials, mt)
		}
	}
	r.checkUsed()
	for _, inc := range sp.includes {
		if added[inc.path] == 0 && d.es.empty() {
			d.warn(inc.path, "adds no trial the grid does not already have")
		}
	}
	return trials
}

// maxCombos bounds a sweep's expansion, so that a typo (seeds = 10000000)
// fails fast instead of exhausting memory.
const maxCombos = 100_000

// size bounds the number of grid and include points (before deduplication).
func (sp *spec) size(cat Catalog) float64 {
	count := func(inc *include) float64 {
		pick := func(key string, grid []setting) float64 {
			if inc != nil {
				if v, ok := inc.axes[key]; ok {
					return float64(len(v))
				}
			}
			return float64(len(grid))
		}
		n := pick("seed", sp.seeds) * pick("task", sp.tasks)
		ranks := 0.0
		methods := sp.methods
		if inc != nil {
			if v, ok := inc.axes["method"]; ok {
				methods = v
			}
		}
		for _, m := range methods {
			name := m.val.(string)
			switch {
			case !cat.HasRank(name):
				ranks++
			case sp.methodRanks[name] != nil:
				ranks += pick("rank", sp.methodRanks[name])
			default:
				ranks += pick("rank", sp.ranks)
			}
		}
		n *= ranks
		keys := map[string]float64{}
		for _, a := range sp.extras {
			keys[a.key] = float64(len(a.vals))
		}
		if inc != nil {
			for k, v := range inc.axes {
				if k != "method" && k != "task" && k != "rank" && k != "seed" {
					keys[k] = float64(len(v))
				}
			}
		}
		for _, v := range keys {
			n *= v
		}
		if inc == nil && len(sp.points) > 0 {
			n *= float64(len(sp.points))
		}
		return n
	}
	n := count(nil)
	for i := range sp.includes {
		n += count(&sp.includes[i])
	}
	return n
}

// product calls f for every combination of the grid, or of an include
// (whose keys replace the grid's values of the same axes).
func (d *decoder) product(sp *spec, inc *include, f func(combo)) {
	pick := func(key string, grid []setting) []setting {
		if inc != nil {
			if v, ok := inc.axes[key]; ok {
				return v
			}
		}
		return grid
	}
	seeds := pick("seed", sp.seeds)
	methods := pick("method", sp.methods)
	tasks := pick("task", sp.tasks)
	origin := ""
	var axes []axis
	if inc == nil {
		axes = sp.extras
	} else {
		origin = inc.path
		keys := map[string][]setting{}
		for _, a := range sp.extras {
			keys[a.key] = a.vals
		}
		for k, v := range inc.axes {
			if k != "method" && k != "task" && k != "rank" && k != "seed" {
				keys[k] = v
			}
		}
		for _, k := range sortedKeys(keys) {
			axes = append(axes, axis{k, keys[k]})
		}
	}
	if inc != nil && len(tasks) == 0 {
		d.es.atKey(inc.path, "no task: name one or list tasks in [grid]")
	}
	for _, seed := range seeds {
		for _, m := range methods {
			name := m.val.(string)
			var ranks []*setting
			if d.cat.HasRank(name) {
				rs := sp.ranks
				if mr, ok := sp.methodRanks[name]; ok {
					rs = mr
				}
				rs = pick("rank", rs)
				if len(rs) == 0 {
					d.es.atVal(m.path, "method %q needs a rank: add rank = [...] to [grid] or [method.%s]", name, name)
					continue
				}
				for i := range rs {
					ranks = append(ranks, &rs[i])
				}
			} else {
				ranks = []*setting{nil}
			}
			for _, t := range tasks {
				for _, rk := range ranks {
					c := combo{seed: seed, method: m, task: t, rank: rk, origin: origin}
					axesProduct(axes, nil, func(vals []keyed) {
						if inc != nil || len(sp.points) == 0 {
							c.vals = vals
							f(c)
							return
						}
						for _, pt := range sp.points { // [search] points: innermost
							c.vals = append(slices.Clone(vals), pt...)
							f(c)
						}
					})
				}
			}
		}
	}
}

func axesProduct(axes []axis, acc []keyed, f func([]keyed)) {
	if len(axes) == 0 {
		f(slices.Clone(acc))
		return
	}
	for _, v := range axes[0].vals {
		axesProduct(axes[1:], append(acc, keyed{axes[0].key, v}), f)
	}
}

// coord returns a combination's value on an axis.
func (c combo) coord(key string) (any, bool) {
	switch key {
	case "seed":
		return c.seed.val, true
	case "method":
		return c.method.val, true
	case "task":
		return c.task.val, true
	case "rank":
		if c.rank == nil {
			return nil, false
		}
		return c.rank.val, true
	}
	for _, kv := range c.vals {
		if kv.key == key {
			return kv.val, true
		}
	}
	return nil, false
}

func (ex *exclude) matches(c combo) bool {
	for k, vals := range ex.match {
		v, ok := c.coord(k)
		if !ok || !slices.ContainsFunc(vals, func(s setting) bool { return sameValue(s.val, v) }) {
			return false
		}
	}
	return true
}

// sameValue compares TOML values, numbers by value whatever their type.
func sameValue(a, b any) bool {
	if x, ok := number(a); ok {
		y, ok := number(b)
		return ok && x == y
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// resolver turns combinations into trials, caching catalog calls.
type resolver struct {
	d           *decoder
	sp          *spec
	used        map[string]bool // declarations (key paths) some trial used
	methodCache map[string]cached
	taskCache   map[string]cached
	layerCache  map[string]cachedLayers
}

type cached struct {
	opts  map[string]any
	err   error
	ident map[string]any // TaskIdentifier's answer for a task; nil otherwise
}

type cachedLayers struct {
	layers []Layer
	err    error
}

// decl is the key path that declared a setting: its path less any index.
func decl(path string) string {
	if strings.HasSuffix(path, "]") {
		return parentPath(path)
	}
	return path
}

func (r *resolver) resolve(c combo) (Trial, bool) {
	d, sp := r.d, r.sp
	method, task := c.method.val.(string), c.task.val.(string)
	rank := 0
	if c.rank != nil {
		rank = c.rank.val.(int)
	}
	train := defaultTrain()
	trainSrc := map[string]string{}
	mopts, msrc := map[string]any{}, map[string]string{}
	topts, tsrc := map[string]any{}, map[string]string{}
	mvalid, tvalid := d.cat.MethodOptions(method), d.cat.TaskOptions(task)
	for _, layer := range [][]keyed{sp.defaults, sp.taskTabs[task], sp.methodTabs[method], c.vals} {
		for _, kv := range layer {
			switch {
			case isTrainKey(kv.key):
				setTrain(&train, kv.key, kv.val)
				trainSrc[kv.key] = kv.path
			case slices.Contains(mvalid, kv.key):
				mopts[kv.key], msrc[kv.key] = kv.val, kv.path
			case slices.Contains(tvalid, kv.key):
				topts[kv.key], tsrc[kv.key] = kv.val, kv.path
			default:
				continue // not an option of this method or task
			}
			r.used[decl(kv.path)] = true
		}
	}
	ok := true
	if train.Warmup > train.Steps {
		d.es.atVal(trainSrc["warmup"], "warmup (%d steps) exceeds steps (%d)", train.Warmup, train.Steps)
		ok = false
	}

	mres := r.method(method, rank, mopts)
	if mres.err != nil {
		r.optionErr(mres.err, msrc, c.method.path, "method", method)
		ok = false
	}
	tres := r.task(task, topts)
	if tres.err != nil {
		r.optionErr(tres.err, tsrc, c.task.path, "task", task)
		return Trial{}, false
	}
	if !r.checkLayers(c, method, rank, task, mres.opts, msrc, tres.opts, train.Targets, trainSrc["targets"]) || !ok {
		return Trial{}, false
	}
	t := Trial{
		Method:        method,
		Rank:          rank,
		Task:          task,
		Seed:          c.seed.val.(int64),
		MethodOptions: maps.Clone(mres.opts),
		TaskOptions:   maps.Clone(tres.opts),
		TaskIdentity:  tres.ident,
		Train:         train,
		Phase:         sp.phase,
	}
	if t.MethodOptions == nil {
		t.MethodOptions = map[string]any{}
	}
	if t.TaskOptions == nil {
		t.TaskOptions = map[string]any{}
	}
	id, err := trialID(t, sp.trainer)
	if err != nil {
		d.es.atVal(c.method.path, "%v", err)
		return Trial{}, false
	}
	t.ID = id
	return t, true
}

func (r *resolver) optionErr(err error, src map[string]string, fallback, kind, name string) {
	var oe *OptionError
	if errors.As(err, &oe) {
		if path, ok := src[oe.Key]; ok {
			r.d.es.atVal(path, "%s %q: %s", kind, name, oe.Msg)
			return
		}
		r.d.es.atVal(fallback, "%s %q: option %s: %s", kind, name, oe.Key, oe.Msg)
		return
	}
	r.d.es.atVal(fallback, "%s %q: %v", kind, name, err)
}

func canonical(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

func (r *resolver) method(name string, rank int, opts map[string]any) cached {
	k := name + "\x00" + strconv.Itoa(rank) + "\x00" + canonical(opts)
	if c, ok := r.methodCache[k]; ok {
		return c
	}
	o, err := r.d.cat.ResolveMethod(name, rank, maps.Clone(opts))
	c := cached{opts: o, err: err}
	r.methodCache[k] = c
	return c
}

func (r *resolver) task(name string, opts map[string]any) cached {
	k := name + "\x00" + canonical(opts)
	if c, ok := r.taskCache[k]; ok {
		return c
	}
	o, err := r.d.cat.ResolveTask(name, maps.Clone(opts))
	c := cached{opts: o, err: err}
	if ti, ok := r.d.cat.(TaskIdentifier); ok && err == nil {
		c.ident, c.err = ti.TaskIdentity(name, maps.Clone(o))
	}
	r.taskCache[k] = c
	return c
}

// checkLayers checks that every target pattern selects a layer of the task
// and asks the method whether its resolved options fit the targeted layers.
func (r *resolver) checkLayers(c combo, method string, rank int, task string, mopts map[string]any, msrc map[string]string, topts map[string]any, targets []string, src string) bool {
	k := task + "\x00" + canonical(topts)
	cl, ok := r.layerCache[k]
	if !ok {
		l, err := r.d.cat.Layers(task, topts)
		cl = cachedLayers{l, err}
		r.layerCache[k] = cl
	}
	es := r.d.es
	if cl.err != nil {
		es.atVal(c.task.path, "task %q: %v", task, cl.err)
		return false
	}
	names := make([]string, len(cl.layers))
	for i, l := range cl.layers {
		names[i] = l.Name
	}
	good := true
	for i, p := range targets {
		hit, _ := Targeted([]string{p}, cl.layers)
		if len(hit) == 0 {
			at := src
			if at == "" {
				at = c.task.path
			} else {
				at = index(src, i)
			}
			es.atVal(at, "target %q matches no layer of task %q%s; layers: %s", p, task, didYouMean(p, names), abbrev(names, 8))
			good = false
		}
	}
	if !good || mopts == nil {
		return good
	}
	hit, _ := Targeted(targets, cl.layers)
	err := r.d.cat.CheckMethodLayers(method, rank, maps.Clone(mopts), hit)
	if tc, ok := r.d.cat.(TaskChecker); ok && err == nil {
		err = tc.CheckMethodTask(method, maps.Clone(mopts), task, topts)
	}
	if err == nil {
		return true
	}
	var oe *OptionError
	if !errors.As(err, &oe) {
		es.atVal(c.method.path, "method %q on task %q: %v", method, task, err)
		return false
	}
	// Point at the value that set the option, else at the rank when the
	// option takes its value from the rank axis (the rank itself; AdaLoRA's
	// init_rank defaults to 1.5 × rank), else at the method.
	at, set := msrc[oe.Key]
	if !set {
		at = c.method.path
		if c.rank != nil && r.d.cat.FromRank(method, oe.Key) {
			at = c.rank.path
		}
	}
	es.atVal(at, "method %q on task %q: option %s: %s", method, task, oe.Key, oe.Msg)
	return false
}

func abbrev(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(", … (%d more)", len(s)-n)
}

// checkUsed reports keys of [defaults], [grid] and [[include]] that are
// neither trainer keys nor an option of any method or task they met.
func (r *resolver) checkUsed() {
	d, sp := r.d, r.sp
	var known []string
	known = append(known, trainKeys...)
	known = append(known, "method", "task", "rank")
	for _, m := range d.cat.Methods() {
		known = append(known, d.cat.MethodOptions(m)...)
	}
	for _, t := range d.cat.Tasks() {
		known = append(known, d.cat.TaskOptions(t)...)
	}
	slices.Sort(known)
	known = slices.Compact(known)
	report := func(path, key string) {
		if r.used[path] {
			return
		}
		if slices.Contains(known, key) {
			d.es.atKey(path, "no method or task of this sweep has option %q", key)
			return
		}
		d.es.atKey(path, "unknown key%s; want a trainer key (%s) or a method or task option", didYouMean(key, known), strings.Join(trainKeys, ", "))
	}
	for _, kv := range sp.defaults {
		report(kv.path, kv.key)
	}
	for _, a := range sp.extras {
		report(join("grid", a.key), a.key)
	}
	if len(sp.points) > 0 {
		for _, kv := range sp.points[0] {
			report(kv.path, kv.key)
		}
	}
	for _, inc := range sp.includes {
		for _, k := range sortedKeys(inc.axes) {
			if k != "method" && k != "task" && k != "rank" && k != "seed" {
				report(join(inc.path, k), k)
			}
		}
	}
}

// identity is what a trial ID hashes: everything that can change a
// trial's result, and nothing else (not the sweep's name, the trial's
// index, threads, GPUs or the executor).
type identity struct {
	Version       int            `json:"v"`
	Method        string         `json:"method"`
	Rank          int            `json:"rank"`
	Task          string         `json:"task"`
	Seed          int64          `json:"seed"`
	MethodOptions map[string]any `json:"method_options"`
	TaskOptions   map[string]any `json:"task_options"`
	Train         TrainConfig    `json:"train"`
	Trainer       []string       `json:"trainer,omitempty"`
	// Mitigate is omitted when nil, so plain trials keep the IDs they had
	// before mitigation existed.
	Mitigate *IntruderMitigation `json:"mitigate_intruders,omitempty"`
	// Phase is omitted when empty, so plain trials keep their IDs.
	Phase string `json:"phase,omitempty"`
}

// idVersion changes when the meaning of a hashed field changes, so old
// results are not mistaken for new ones.
const idVersion = 1

// trialID is the first 16 hex digits of the SHA-256 of the trial's
// identity as JSON (encoding/json sorts map keys, so the encoding is
// canonical).
func trialID(t Trial, tr TrainerSpec) (string, error) {
	id := identity{
		Version:       idVersion,
		Method:        t.Method,
		Rank:          t.Rank,
		Task:          t.Task,
		Seed:          t.Seed,
		MethodOptions: t.MethodOptions,
		TaskOptions:   t.TaskOptions,
		Train:         t.Train,
		Mitigate:      t.MitigateIntruders,
		Phase:         t.Phase,
	}
	if t.TaskIdentity != nil {
		id.TaskOptions = t.TaskIdentity
	}
	if tr.Kind == "command" {
		id.Trainer = tr.Command
	}
	b, err := json.Marshal(id)
	if err != nil {
		return "", fmt.Errorf("cannot hash the resolved config: %v", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// TrialID recomputes a trial's ID from its resolved fields, for checking
// that a recorded trial matches its config. trainer is the plan's trainer.
func TrialID(t Trial, trainer TrainerSpec) (string, error) { return trialID(t, trainer) }
