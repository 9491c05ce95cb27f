package sweeps

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Search is a sweep's [search] table: N points sampled from the
// distributions of its axes. Each point is crossed with the grid
// (methods × ranks × tasks × seeds × other grid axes) like one more grid
// value, so a point's trials are resolved and hashed like grid trials and
// resume like them. The points depend on the [search] table alone (kind,
// n, seed, axes), never on the grid, the machine or the run.
type Search struct {
	Kind string       `json:"kind"` // "random" or "sobol"
	N    int          `json:"n"`
	Seed int64        `json:"seed"`
	Axes []SearchAxis `json:"axes"` // sorted by key
}

// SearchAxis is one searched hyperparameter: a trainer key, a method option
// or a task option, and the distribution its values are drawn from.
type SearchAxis struct {
	Key  string `json:"key"`
	Dist string `json:"dist"` // "log_uniform", "uniform", "int_uniform" or "choice"
	// Lo and Hi bound log_uniform, uniform and int_uniform (both included
	// for int_uniform).
	Lo float64 `json:"lo,omitempty"`
	Hi float64 `json:"hi,omitempty"`
	// Choices are choice's values, TOML scalars.
	Choices []any `json:"choices,omitempty"`
}

// Search kinds and distributions.
var (
	searchKinds = []string{"random", "sobol"}
	searchDists = []string{"log_uniform", "uniform", "int_uniform", "choice"}
)

// searchDigits is the number of significant digits a sampled float keeps:
// short enough that a point reads well in labels and is written exactly in
// TOML, fine enough (10⁻⁴ relative) for any search of a few hundred points.
const searchDigits = 4

// search reads [search] and returns its points, each a list of key = value
// settings in key order whose path is the axis ("search.lr"), and the table
// decoded for the plan (nil without [search]).
func (d *decoder) search(raw map[string]any, sp *spec) (*Search, [][]keyed) {
	t, ok := d.table(raw, "search")
	if !ok {
		return nil, nil
	}
	s := &Search{Kind: "random"}
	if v, ok := t["kind"]; ok {
		if k, ok := d.str("search.kind", v); ok {
			if !slices.Contains(searchKinds, k) {
				d.es.atVal("search.kind", "unknown search %q%s; valid: %s", k, didYouMean(k, searchKinds), strings.Join(searchKinds, ", "))
			}
			s.Kind = k
		}
	}
	if v, ok := t["n"]; !ok {
		d.es.atKey("search", "missing key \"n\" (the number of points to sample)")
	} else if n, ok := d.int("search.n", v, 1); ok {
		if n > maxCombos {
			d.es.atVal("search.n", "must be at most %d, got %d", maxCombos, n)
		} else {
			s.N = n
		}
	}
	if v, ok := t["seed"]; ok {
		if n, msg := asInt(v); msg != "" {
			d.es.atVal("search.seed", "%s", msg)
		} else {
			s.Seed = n
		}
	}
	grid := map[string]bool{}
	for _, a := range sp.extras {
		grid[a.key] = true
	}
	for _, k := range sortedKeys(t) {
		if k == "kind" || k == "n" || k == "seed" {
			continue
		}
		path := join("search", k)
		switch {
		case k == "method" || k == "task" || k == "rank":
			d.es.atKey(path, "%s cannot be searched: list its values under [grid]", k)
			continue
		case grid[k]:
			d.es.atKey(path, "%s is both a grid axis and a search axis; keep one", k)
			continue
		}
		if a, ok := d.searchAxis(path, k, t[k]); ok {
			s.Axes = append(s.Axes, a)
		}
	}
	if len(t) == len(s.Axes)+countKeys(t, "kind", "n", "seed") && len(s.Axes) == 0 {
		d.es.atKey("search", "no axis to search: add e.g. lr = {log_uniform = [1e-4, 1e-1]}")
	}
	if len(s.Axes) > sobolMaxDim && s.Kind == "sobol" {
		d.es.atKey("search", "sobol search supports at most %d axes, got %d", sobolMaxDim, len(s.Axes))
	}
	if !d.es.empty() || s.N == 0 {
		return s, nil
	}
	var points [][]keyed
	seen := map[string]int{}
	for i, u := range s.unitPoints() {
		pt := make([]keyed, len(s.Axes))
		var k strings.Builder
		for j, a := range s.Axes {
			path := join("search", a.Key)
			v, ok := d.value(path, a.Key, a.at(u[j]))
			if !ok {
				return s, nil // reported at the axis
			}
			pt[j] = keyed{a.Key, setting{v, path}}
			fmt.Fprintf(&k, "%s=%s\x00", a.Key, canonical(v))
		}
		if j, dup := seen[k.String()]; dup {
			d.warn("search", "points %d and %d are equal after rounding to %d digits; the sweep keeps one", j, i, searchDigits)
			continue
		}
		seen[k.String()] = i
		points = append(points, pt)
	}
	return s, points
}

// searchAxis decodes one axis, key = {dist = ...}, checking its bounds (and,
// for a trainer key, that every value it can draw is valid).
func (d *decoder) searchAxis(path, key string, v any) (SearchAxis, bool) {
	a := SearchAxis{Key: key}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		d.es.atVal(path, "want a distribution such as {log_uniform = [1e-4, 1e-1]}, {uniform = [0, 0.3]}, {int_uniform = [1, 8]} or {choice = [8, 16]}")
		return a, false
	}
	for k := range m {
		a.Dist = k
	}
	dp := join(path, a.Dist)
	if !slices.Contains(searchDists, a.Dist) {
		d.es.atKey(dp, "unknown distribution%s; valid: %s", didYouMean(a.Dist, searchDists), strings.Join(searchDists, ", "))
		return a, false
	}
	vals, isList := m[a.Dist].([]any)
	if !isList {
		d.es.atVal(dp, "want a list, got %s", typeName(m[a.Dist]))
		return a, false
	}
	if a.Dist == "choice" {
		if len(vals) == 0 {
			d.es.atVal(dp, "empty choice")
			return a, false
		}
		for i, c := range vals {
			if _, ok := d.value(index(dp, i), key, c); !ok {
				return a, false
			}
			if slices.ContainsFunc(vals[:i], func(p any) bool { return sameValue(p, c) }) {
				d.es.atVal(index(dp, i), "duplicate choice %v", c)
				return a, false
			}
		}
		a.Choices = vals
		return a, true
	}
	if len(vals) != 2 {
		d.es.atVal(dp, "want [low, high], got %d values", len(vals))
		return a, false
	}
	var bounds [2]float64
	for i, b := range vals {
		var msg string
		if a.Dist == "int_uniform" {
			var n int64
			n, msg = asInt(b)
			bounds[i] = float64(n)
		} else {
			bounds[i], msg = asFloat(b)
		}
		if msg != "" {
			d.es.atVal(index(dp, i), "%s", msg)
			return a, false
		}
	}
	a.Lo, a.Hi = bounds[0], bounds[1]
	switch {
	case a.Dist == "int_uniform" && a.Lo > a.Hi:
		d.es.atVal(dp, "low %v is above high %v", a.Lo, a.Hi)
		return a, false
	case a.Dist != "int_uniform" && !(a.Lo < a.Hi):
		d.es.atVal(dp, "low %v must be below high %v (for one value, use it under [defaults] or [grid])", a.Lo, a.Hi)
		return a, false
	case a.Dist == "log_uniform" && !(a.Lo > 0):
		d.es.atVal(index(dp, 0), "log_uniform needs a positive low bound, got %v", a.Lo)
		return a, false
	case a.Dist == "int_uniform" && (math.Abs(a.Lo) > 1<<53 || math.Abs(a.Hi) > 1<<53):
		d.es.atVal(dp, "bounds beyond ±2⁵³")
		return a, false
	}
	if isTrainKey(key) { // the draws lie between the bounds: check both
		for i := range vals {
			if _, msg := checkTrain(key, a.at(float64(i))); msg != "" {
				d.es.atVal(index(dp, i), "%s", msg)
				return a, false
			}
		}
	}
	return a, true
}

// at maps u in [0, 1] to the axis's value: a float64 (rounded to
// searchDigits significant digits), an int64 for int_uniform, or a choice.
func (a SearchAxis) at(u float64) any {
	switch a.Dist {
	case "choice":
		return a.Choices[min(int(u*float64(len(a.Choices))), len(a.Choices)-1)]
	case "int_uniform":
		return min(int64(a.Lo)+int64(u*(a.Hi-a.Lo+1)), int64(a.Hi))
	case "log_uniform":
		return round(math.Exp(math.Log(a.Lo)+u*(math.Log(a.Hi)-math.Log(a.Lo))), searchDigits)
	}
	return round(a.Lo+u*(a.Hi-a.Lo), searchDigits)
}

// round keeps digits significant digits of x.
func round(x float64, digits int) float64 {
	y, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', digits, 64), 64)
	return y
}

// unitPoints are the search's N points in [0, 1)^len(Axes), before the axes
// map them: uniform draws of a PCG seeded with Seed (random), or the first N
// points of the Sobol sequence under a digital shift drawn from that PCG
// (sobol).
func (s *Search) unitPoints() [][]float64 {
	rng := rand.New(rand.NewPCG(uint64(s.Seed), 0x7065667473656172)) // "peftsear"
	dim := len(s.Axes)
	out := make([][]float64, s.N)
	if s.Kind == "sobol" {
		q := newSobol(dim)
		shift := make([]uint32, dim)
		for j := range shift {
			shift[j] = rng.Uint32()
		}
		for i := range out {
			out[i] = q.shifted(shift)
			q.next()
		}
		return out
	}
	for i := range out {
		out[i] = make([]float64, dim)
		for j := range out[i] {
			out[i][j] = rng.Float64()
		}
	}
	return out
}

// String describes the search in one line.
func (s *Search) String() string {
	return fmt.Sprintf("%s search of %d points over %d axes (seed %d)", s.Kind, s.N, len(s.Axes), s.Seed)
}

// countKeys counts the keys of m among keys.
func countKeys(m map[string]any, keys ...string) int {
	n := 0
	for _, k := range keys {
		if _, ok := m[k]; ok {
			n++
		}
	}
	return n
}
