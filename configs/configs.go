package configs

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"peftbench/analysis"
	"peftbench/internal/numfmt"
	"peftbench/results"
)

// Config is one configuration across seeds: the trials of one task,
// method and rank whose resolved settings (results.ConfigPairs) are equal
// but for the seed. Its seeds give a point's confidence interval; a sweep
// over learning rates is never pooled as seeds.
type Config struct {
	Task, Method string
	Rank         int64   // 0 for methods without a rank (full fine-tuning)
	Alpha        float64 // the method's resolved α; NaN without one
	// Pairs are the trials' ConfigPairs ("train.lr=0.001"), sorted.
	Pairs []string
	// Settings are the pairs that tell the configuration apart from the
	// others of its slot (see SetSettings), if any.
	Settings []string
	Trials   []*results.TrialRow
}

// AlphaPath is the config path of a method's resolved α.
const AlphaPath = "method_options.alpha"

// Ranked reports whether the method has a rank. A configuration without
// one (full fine-tuning) is the reference others are compared against.
func (c *Config) Ranked() bool { return c.Rank > 0 }

// Label is "method r=8", or the method alone when it has no rank,
// followed by the settings that tell the configuration apart
// ("full lr=1e-4").
func (c *Config) Label() string {
	l := c.Method
	if c.Ranked() {
		l = fmt.Sprintf("%s r=%d", c.Method, c.Rank)
	}
	for _, p := range c.Settings {
		l += " " + ShortPair(p)
	}
	return l
}

// Summary summarises a column over the configuration's seeds (mean,
// bootstrap 95% CI).
func (c *Config) Summary(m Column) analysis.Summary {
	xs := make([]float64, len(c.Trials))
	for i, t := range c.Trials {
		xs[i] = m.Value(t)
	}
	return analysis.Summarize(xs)
}

// Has reports whether any seed of the configuration reports the column.
func (c *Config) Has(m Column) bool {
	for _, t := range c.Trials {
		if !math.IsNaN(m.Value(t)) {
			return true
		}
	}
	return false
}

// Key returns the identity of t's configuration (task, method, rank and
// its ConfigPairs) and the pairs. A config that does not parse is an
// error; its key is then task, method and rank alone.
func Key(t *results.TrialRow) (key string, pairs []string, err error) {
	pairs, err = results.ConfigPairs(t.Config)
	if err != nil {
		err = fmt.Errorf("trial %s: %w", t.TrialID, err)
	}
	return strings.Join(append([]string{t.Task, t.Method, fmt.Sprint(t.Rank)}, pairs...), "\x00"), pairs, err
}

// Group groups trials by configuration, in the order each is first seen,
// each configuration's trials in the order given. A trial whose config does
// not parse is grouped by task, method and rank alone, and the first such
// is the error returned beside the groups.
func Group(trials []*results.TrialRow) ([]*Config, error) {
	var out []*Config
	var first error
	idx := map[string]*Config{}
	for _, t := range trials {
		k, pairs, err := Key(t)
		if err != nil && first == nil {
			first = err
		}
		c := idx[k]
		if c == nil {
			c = &Config{Task: t.Task, Method: t.Method, Rank: t.Rank, Alpha: math.NaN(), Pairs: pairs}
			for _, p := range pairs {
				if path, _, _ := strings.Cut(p, "="); path == AlphaPath {
					c.Alpha = PairValue(p)
				}
			}
			idx[k] = c
			out = append(out, c)
		}
		c.Trials = append(c.Trials, t)
	}
	return out, first
}

// Varying returns, for each configuration (its ConfigPairs), the pairs
// that are not shared by every configuration of the slice: what tells it
// apart from the others.
func Varying(configs [][]string) [][]string {
	count := map[string]int{}
	for _, ps := range configs {
		for _, p := range ps {
			count[p]++
		}
	}
	out := make([][]string, len(configs))
	for i, ps := range configs {
		for _, p := range ps {
			if count[p] < len(configs) {
				out[i] = append(out[i], p)
			}
		}
	}
	return out
}

// SetSettings sets each configuration's Settings to the pairs that vary
// among the configurations of its slot (slot(c) equal), where a slot has
// two or more.
func SetSettings(cs []*Config, slot func(*Config) string) {
	bySlot := map[string][]*Config{}
	var order []string
	for _, c := range cs {
		k := slot(c)
		if _, ok := bySlot[k]; !ok {
			order = append(order, k)
		}
		bySlot[k] = append(bySlot[k], c)
	}
	for _, k := range order {
		g := bySlot[k]
		if len(g) < 2 {
			continue
		}
		ps := make([][]string, len(g))
		for i, c := range g {
			ps[i] = c.Pairs
		}
		for i, v := range Varying(ps) {
			g[i].Settings = v
		}
	}
}

// SlotRank is the slot of configurations sharing task, method and rank.
func SlotRank(c *Config) string { return fmt.Sprint(c.Task, "\x00", c.Method, "\x00", c.Rank) }

// SlotMethod is the slot of configurations sharing task and method.
func SlotMethod(c *Config) string { return c.Task + "\x00" + c.Method }

// ShortPair writes a config pair for a label: the last path element and
// the value, numbers in short form ("train.lr=0.0001" is "lr=1e-4").
func ShortPair(pair string) string {
	path, val, _ := strings.Cut(pair, "=")
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		path = path[i+1:]
	}
	if path == "alpha" {
		path = "α"
	}
	return path + "=" + shortValue(val)
}

func shortValue(v string) string {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return strings.Trim(v, `"`)
	}
	return numfmt.ShortFloat(f)
}

// PairValue is a pair's value as a number, for ordering; NaN if none.
func PairValue(pair string) float64 {
	_, v, _ := strings.Cut(pair, "=")
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// ComparePairs orders two sorted ConfigPairs lists, values of one path
// numerically where they are numbers.
func ComparePairs(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] == b[i] {
			continue
		}
		pa, _, _ := strings.Cut(a[i], "=")
		pb, _, _ := strings.Cut(b[i], "=")
		if pa == pb {
			if fa, fb := PairValue(a[i]), PairValue(b[i]); !math.IsNaN(fa) && !math.IsNaN(fb) {
				return cmp.Compare(fa, fb)
			}
		}
		return cmp.Compare(a[i], b[i])
	}
	return cmp.Compare(len(a), len(b))
}

// IsAlong reports whether the config pair p ("train.lr=0.001") sets the
// axis along, named in full ("train.lr") or by its last part ("lr").
func IsAlong(p, along string) bool {
	path, _, _ := strings.Cut(p, "=")
	return path == along || strings.HasSuffix(path, "."+along)
}

// Curves merges the configurations that differ only in the setting along
// (the learning rate) into one per curve: its pairs without along, the
// trials of all of them. It returns the merged configurations in the
// order first seen and, per merged one, its configurations in their order
// along it.
func Curves(cs []*Config, along string) (merged []*Config, points map[*Config][]*Config) {
	points = map[*Config][]*Config{}
	byKey := map[string]*Config{}
	for _, c := range cs {
		var pairs []string
		for _, p := range c.Pairs {
			if !IsAlong(p, along) {
				pairs = append(pairs, p)
			}
		}
		k := strings.Join(append([]string{c.Task, c.Method, fmt.Sprint(c.Rank)}, pairs...), "\x00")
		m, ok := byKey[k]
		if !ok {
			m = &Config{Task: c.Task, Method: c.Method, Rank: c.Rank, Alpha: c.Alpha, Pairs: pairs}
			byKey[k] = m
			merged = append(merged, m)
		}
		m.Trials = append(m.Trials, c.Trials...)
		points[m] = append(points[m], c)
	}
	return merged, points
}

// ReadCurve reads column y of a curve's configurations at a target loss:
// each seed's runs along the curve are interpolated at level (see
// analysis.ReadAt).
func ReadCurve(points []*Config, y Column, level float64) analysis.Matched {
	var runs []analysis.Run
	for i, c := range points {
		for _, t := range c.Trials {
			runs = append(runs, analysis.Run{Config: i, Seed: t.Seed, X: t.TargetLoss, Y: y.Value(t)})
		}
	}
	return analysis.ReadAt(runs, level)
}

// ReferenceLevels are the mean target losses of the configurations
// without a rank (full fine-tuning), ascending: the losses the matched
// comparison reads every curve at.
func ReferenceLevels(cs []*Config) []float64 {
	var levels []float64
	for _, c := range cs {
		if c.Ranked() {
			continue
		}
		if s := c.Summary(TargetLoss); s.N > 0 {
			levels = append(levels, s.Mean)
		}
	}
	slices.Sort(levels)
	return levels
}
