package sweeps

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Protocol is a sweep's [protocol] table. Kind "tune" is tune-then-test:
// for each configuration group (the trials that differ only in the tuned
// axes and the seed: method × rank × task, and any axis not tuned), the
// runner runs the group's search points on the tune seeds (phase 1,
// Plan.Trials, Phase "search"), chooses the point whose mean Metric over
// the tune seeds is best (ties: the first in plan order), then runs the
// chosen point on the test seeds (phase 2, Phase "test"; see TestTrial).
// The metric is read on validation (val_metric by default), never on the
// test ("target") split.
type Protocol struct {
	Kind string `json:"kind"` // "tune"
	// Metric is the trials.parquet column (or extra metric) points are
	// ranked by; default "val_metric".
	Metric string `json:"metric"`
	// Direction is "max" or "min"; "" leaves it to the runner, which takes
	// the metric's known direction (this package knows no columns).
	Direction string `json:"direction,omitempty"`
	// Axes are the tuned axes' keys: as [protocol] axes lists them, else
	// every axis of [grid] or an [[include]] with more than one value, by
	// key.
	Axes []string `json:"axes"`
	// TuneSeeds are the seeds of the search trials; TestSeeds those of the
	// test trials, disjoint from them.
	TuneSeeds []int64 `json:"tune_seeds"`
	TestSeeds []int64 `json:"test_seeds"`
	// Budget is the most search points a group may have (each runs once
	// per tune seed); 0 = no bound. A group over it is refused at load.
	Budget int `json:"budget,omitempty"`
	// Groups are the configuration groups, in plan order of their first
	// search trial.
	Groups []TuneGroup `json:"groups"`
}

// TuneGroup is one configuration group of a tune sweep.
type TuneGroup struct {
	Label  string `json:"label"` // "lora r8 teacher-shift", plus untuned axes' values
	Method string `json:"method"`
	Rank   int    `json:"rank"`
	Task   string `json:"task"`
	// Points are the group's search points in plan order.
	Points []TunePoint `json:"points"`
}

// TunePoint is one search point of a group: the tuned axes' resolved
// values (an axis that does not apply to the group's method, alpha for
// full fine-tuning, is absent) and its search trials, one per tune seed.
type TunePoint struct {
	Values map[string]any `json:"values"`
	Trials []string       `json:"trials"` // search trial IDs, in tune-seed order
}

// Trial phases of a tune sweep; a plain sweep's trials have none.
const (
	PhaseSearch = "search"
	PhaseTest   = "test"
)

var protocolKeys = []string{"kind", "metric", "direction", "axes", "tune_seeds", "test_seeds", "budget"}

// DefaultTestSeeds is the number of test seeds of a tune sweep that names none.
const DefaultTestSeeds = 5

// protocol reads [protocol]; nil when the sweep has none. Its tune seeds
// become the sweep's seeds.
func (d *decoder) protocol(raw map[string]any, sp *spec) *Protocol {
	t, ok := d.table(raw, "protocol")
	if !ok {
		return nil
	}
	d.unknownKeys(t, "protocol", protocolKeys)
	pr := &Protocol{Metric: "val_metric"}
	if v, ok := t["kind"]; !ok {
		d.es.atKey("protocol", "missing kind (kind = \"tune\": choose hyperparameters on validation, then test the choice on fresh seeds)")
	} else if s, ok := d.str("protocol.kind", v); ok {
		if s != "tune" {
			d.es.atVal("protocol.kind", "unknown protocol %q%s; valid: tune", s, didYouMean(s, []string{"tune"}))
		}
		pr.Kind = s
	}
	if v, ok := t["metric"]; ok {
		if s, ok := d.str("protocol.metric", v); ok {
			if s == "" {
				d.es.atVal("protocol.metric", "empty metric name")
			}
			if strings.HasPrefix(s, "target_") {
				d.es.atVal("protocol.metric", "%q is measured on the test split; choose on validation (val_metric, val_loss) so that the test results stay unbiased", s)
			}
			pr.Metric = s
		}
	}
	if v, ok := t["direction"]; ok {
		if s, ok := d.str("protocol.direction", v); ok {
			if s != "max" && s != "min" {
				d.es.atVal("protocol.direction", "want \"max\" or \"min\", got %q", s)
			}
			pr.Direction = s
		}
	}
	if v, ok := t["axes"]; ok {
		for _, s := range list("protocol.axes", v) {
			name, ok := d.str(s.path, s.val)
			if !ok {
				continue
			}
			switch {
			case name == "method" || name == "task" || name == "rank" || name == "seed":
				d.es.atVal(s.path, "%s is a group axis, not a tuned one: each method × rank × task gets its own choice", name)
			case slices.Contains(pr.Axes, name):
				d.es.atVal(s.path, "duplicate axis %q", name)
			default:
				pr.Axes = append(pr.Axes, name)
			}
		}
		if len(pr.Axes) == 0 && d.es.empty() {
			d.es.atVal("protocol.axes", "empty list: name the axes chosen on validation")
		}
	}
	pr.TuneSeeds = d.protocolSeeds(t, "tune_seeds", 1, 0)
	next := int64(0)
	for _, s := range pr.TuneSeeds {
		next = max(next, s+1)
	}
	pr.TestSeeds = d.protocolSeeds(t, "test_seeds", DefaultTestSeeds, next)
	for _, s := range pr.TestSeeds {
		if slices.Contains(pr.TuneSeeds, s) {
			d.es.atVal("protocol.test_seeds", "seed %d is also a tune seed: test on seeds the choice did not see (the chosen point's tune seeds favour it)", s)
		}
	}
	if n := len(pr.TestSeeds); n > 0 && n < 3 {
		d.warn("protocol.test_seeds", "%d test seed(s): too few for confidence intervals; use at least 3", n)
	}
	if v, ok := t["budget"]; ok {
		pr.Budget, _ = d.int("protocol.budget", v, 1)
	}
	if _, ok := raw["seeds"]; ok {
		d.es.atKey("seeds", "a tune sweep takes its seeds from [protocol] tune_seeds and test_seeds; remove seeds")
	}
	for _, s := range pr.TuneSeeds {
		sp.seeds = append(sp.seeds, setting{s, "protocol.tune_seeds"})
	}
	sp.phase = PhaseSearch
	return pr
}

// protocolSeeds reads tune_seeds or test_seeds: a count n (the n seeds
// from first on) or a list; def seeds from first when absent.
func (d *decoder) protocolSeeds(t map[string]any, key string, def int, first int64) []int64 {
	path := join("protocol", key)
	v, ok := t[key]
	if !ok {
		v = int64(def)
	}
	var out []int64
	if n, isInt := v.(int64); isInt {
		if n <= 0 || n > 1000 {
			d.es.atVal(path, "seed count must be in [1, 1000], got %d", n)
			return nil
		}
		for i := range n {
			out = append(out, first+i)
		}
		return out
	}
	if _, isList := v.([]any); !isList {
		d.es.atVal(path, "want a list of integer seeds or a count, got %s", typeName(v))
		return nil
	}
	for _, s := range list(path, v) {
		n, msg := asInt(s.val)
		if msg != "" {
			d.es.atVal(s.path, "seed: %s", msg)
			continue
		}
		if slices.Contains(out, n) {
			d.es.atVal(s.path, "duplicate seed %d", n)
			continue
		}
		out = append(out, n)
	}
	if len(out) == 0 && d.es.empty() {
		d.es.atVal(path, "empty seed list")
	}
	return out
}

// tuneAxes checks the protocol's axes against the sweep's, or picks the
// default: every non-structural axis of [grid] or an [[include]] with more
// than one value, and every [search] axis when the search has more than
// one point.
func (d *decoder) tuneAxes(sp *spec, pr *Protocol) {
	multi := map[string]bool{}
	var order []string
	note := func(key string, n int) {
		if !slices.Contains(order, key) {
			order = append(order, key)
		}
		if n > 1 {
			multi[key] = true
		}
	}
	for _, a := range sp.extras {
		note(a.key, len(a.vals))
	}
	if len(sp.points) > 0 {
		for _, kv := range sp.points[0] {
			note(kv.key, len(sp.points))
		}
	}
	for _, inc := range sp.includes {
		if _, ok := inc.axes["seed"]; ok {
			d.es.atKey(join(inc.path, "seed"), "a tune sweep takes its seeds from [protocol]; remove seed here")
		}
		for _, k := range sortedKeys(inc.axes) {
			if k != "method" && k != "task" && k != "rank" && k != "seed" {
				note(k, len(inc.axes[k]))
			}
		}
	}
	if pr.Axes == nil {
		for _, k := range order {
			if multi[k] {
				pr.Axes = append(pr.Axes, k)
			}
		}
		if len(pr.Axes) == 0 {
			d.es.atKey("protocol", "nothing to tune: no axis of [grid], [[include]] or [search] has more than one value (e.g. lr = [1e-3, 3e-3, 1e-2])")
		}
		return
	}
	for i, k := range pr.Axes {
		if !slices.Contains(order, k) {
			d.es.atVal(index("protocol.axes", i), "%q is no axis of [grid], [[include]] or [search]%s; tuned axes: %s", k, didYouMean(k, order), strings.Join(order, ", "))
		}
	}
}

// tuneGroups sorts the expanded search trials into configuration groups
// and points, and checks the budget.
func (d *decoder) tuneGroups(sp *spec, p *Plan) {
	pr := p.Protocol
	var untuned []string // multi-valued axes not tuned: they tell groups apart
	for _, a := range sp.extras {
		if len(a.vals) > 1 && !slices.Contains(pr.Axes, a.key) {
			untuned = append(untuned, a.key)
		}
	}
	groups := map[string]int{}
	for _, t := range p.Trials {
		gk := groupKey(t, pr.Axes)
		g, ok := groups[gk]
		if !ok {
			g = len(pr.Groups)
			groups[gk] = g
			pr.Groups = append(pr.Groups, TuneGroup{Label: groupLabel(t, untuned), Method: t.Method, Rank: t.Rank, Task: t.Task})
		}
		vals := map[string]any{}
		for _, k := range pr.Axes {
			if v, ok := AxisValue(t, k); ok {
				vals[k] = v
			}
		}
		pk := canonical(vals)
		grp := &pr.Groups[g]
		j := slices.IndexFunc(grp.Points, func(pt TunePoint) bool { return canonical(pt.Values) == pk })
		if j < 0 {
			j = len(grp.Points)
			grp.Points = append(grp.Points, TunePoint{Values: vals})
		}
		grp.Points[j].Trials = append(grp.Points[j].Trials, t.ID)
	}
	for _, g := range pr.Groups {
		if pr.Budget > 0 && len(g.Points) > pr.Budget {
			d.es.atVal("protocol.budget", "group %s has %d search points, over the budget of %d: trim its axes or raise budget", g.Label, len(g.Points), pr.Budget)
		}
	}
}

// groupKey is what the trials of one configuration group share: the
// identity less the seed and the tuned axes.
func groupKey(t Trial, axes []string) string {
	mo, to := maps.Clone(t.MethodOptions), maps.Clone(t.TaskOptions)
	var train map[string]any
	b, _ := json.Marshal(t.Train)
	json.Unmarshal(b, &train)
	for _, k := range axes {
		delete(mo, k)
		delete(to, k)
		delete(train, k)
	}
	return canonical(struct {
		Method   string
		Rank     int
		Task     string
		MO, TO   map[string]any
		Train    map[string]any
		Mitigate *IntruderMitigation
	}{t.Method, t.Rank, t.Task, mo, to, train, t.MitigateIntruders})
}

func groupLabel(t Trial, untuned []string) string {
	s := t.Method
	if t.Rank > 0 {
		s += fmt.Sprintf(" r%d", t.Rank)
	}
	s += " " + t.Task
	for _, k := range untuned {
		if v, ok := AxisValue(t, k); ok {
			s += fmt.Sprintf(" %s=%v", k, v)
		}
	}
	if t.MitigateIntruders != nil {
		s += fmt.Sprintf(" mitigated λ=%v", t.MitigateIntruders.Lambda)
	}
	return s
}

// AxisValue is a trial's resolved value of a sweep axis key: a trainer
// key's (lr, weight_decay, …), else the method option's, else the task
// option's; false when the key sets nothing of this trial.
func AxisValue(t Trial, key string) (any, bool) {
	if isTrainKey(key) {
		var m map[string]any
		b, _ := json.Marshal(t.Train)
		json.Unmarshal(b, &m)
		v, ok := m[key]
		return v, ok
	}
	if v, ok := t.MethodOptions[key]; ok {
		return v, true
	}
	v, ok := t.TaskOptions[key]
	return v, ok
}

// TestTrial is the test trial of the chosen search trial s at a test seed:
// s with that seed and Phase "test", its ID recomputed (so a rerun that
// makes the same choice finds it finished), at plan position index.
func (p *Plan) TestTrial(s Trial, seed int64, index int) (Trial, error) {
	t := s
	t.Seed, t.Phase, t.Index = seed, PhaseTest, index
	t.MethodOptions, t.TaskOptions = maps.Clone(s.MethodOptions), maps.Clone(s.TaskOptions)
	t.Train.Targets = slices.Clone(s.Train.Targets)
	id, err := trialID(t, p.Trainer)
	if err != nil {
		return Trial{}, fmt.Errorf("sweeps: test trial of %s: %w", s.ID, err)
	}
	t.ID = id
	return t, nil
}
