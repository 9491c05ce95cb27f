package sweeps

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"

	"peftbench/internal/numfmt"
)

// labelIdentity are the keys of a trial's JSON that name it rather than set
// it up; a label shows them apart (method, rank, task, seed) or not at all.
var labelIdentity = []string{"sweep", "trial_id", "index", "seed", "method", "task", "rank"}

// settings flattens t's resolved settings, without its identity, into
// path → JSON value ("train.lr" → "0.001"), as results.ConfigPairs does
// for a recorded trial.
func (t Trial) settings() map[string]string {
	b, err := json.Marshal(t)
	if err != nil {
		return nil // a Trial holds TOML scalars only: it always encodes
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil
	}
	for _, k := range labelIdentity {
		delete(m, k)
	}
	if mo, ok := m["method_options"].(map[string]any); ok {
		delete(mo, "rank") // the trial's rank again
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if obj, ok := v.(map[string]any); ok {
			for k, x := range obj {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
			return
		}
		b, _ := json.Marshal(v) // a value decoded from JSON encodes again
		out[prefix] = string(b)
	}
	walk("", m)
	return out
}

// Swept returns the settings a sweep varies besides method, rank, task and
// seed: the config paths ("train.lr", "method_options.alpha") whose value
// differs between two trials of one task, method and rank (a path one of
// them lacks counts as differing). A setting that only changes with the
// method, rank or task (a method's default α) is not swept. The paths are
// in label order: train settings, then the method's, the task's, the rest,
// each group sorted.
func Swept(trials []Trial) []string {
	type slot struct {
		task, method string
		rank         int
	}
	first := map[slot]map[string]string{} // each slot's first trial's settings
	swept := map[string]bool{}
	for _, t := range trials {
		s := t.settings()
		k := slot{t.Task, t.Method, t.Rank}
		f, ok := first[k]
		if !ok {
			first[k] = s
			continue
		}
		for p, v := range s {
			if w, ok := f[p]; !ok || w != v {
				swept[p] = true
			}
		}
		for p := range f {
			if _, ok := s[p]; !ok {
				swept[p] = true
			}
		}
	}
	paths := slices.Collect(maps.Keys(swept))
	slices.SortFunc(paths, func(a, b string) int {
		return cmp.Or(cmp.Compare(pathGroup(a), pathGroup(b)), cmp.Compare(a, b))
	})
	return paths
}

func pathGroup(p string) int {
	for i, g := range []string{"train.", "method_options.", "task_options."} {
		if strings.HasPrefix(p, g) {
			return i
		}
	}
	return 3
}

// Settings is t's values of the swept paths (Swept) it has, for people:
// "lr=1e-3 α=16". A path is shown by its last element ("alpha" as α), or
// whole where two swept paths share that element; numbers are short
// (1e-3, 0.5), strings bare.
func (t Trial) Settings(swept []string) string {
	if len(swept) == 0 {
		return ""
	}
	s := t.settings()
	short := map[string]int{}
	for _, p := range swept {
		short[lastElem(p)]++
	}
	var parts []string
	for _, p := range swept {
		v, ok := s[p]
		if !ok {
			continue
		}
		name := p
		if short[lastElem(p)] == 1 {
			name = lastElem(p)
		}
		if name == "alpha" {
			name = "α"
		}
		parts = append(parts, name+"="+shortValue(v))
	}
	return strings.Join(parts, " ")
}

// Label names t for people, apart from the trials of its sweep: its method,
// rank (when it has one), task, swept settings (Settings) and seed, e.g.
// "lora r=8 mnist-split lr=1e-3 α=16 seed=1".
func (t Trial) Label(swept []string) string {
	l := t.Method
	if t.Rank > 0 {
		l += " r=" + strconv.Itoa(t.Rank)
	}
	l += " " + t.Task
	if s := t.Settings(swept); s != "" {
		l += " " + s
	}
	return l + " seed=" + strconv.FormatInt(t.Seed, 10)
}

// Labels returns the Label of every trial of the plan by ID.
func (p *Plan) Labels() map[string]string {
	swept := Swept(p.Trials)
	out := make(map[string]string, len(p.Trials))
	for _, t := range p.Trials {
		out[t.ID] = t.Label(swept)
	}
	return out
}

func lastElem(p string) string {
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// shortValue writes a JSON scalar for a label: strings unquoted, numbers
// short (numfmt.ShortFloat), anything else as JSON.
func shortValue(v string) string {
	if s, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
		return s
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return numfmt.ShortFloat(f)
	}
	return v
}
