package plots

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Skip says why a figure was not drawn: there was no data for it. A figure
// without data is skipped, never drawn empty.
type Skip struct {
	Kind, Task, Reason string
}

func (s Skip) String() string {
	if s.Task == "" {
		return s.Kind + ": " + s.Reason
	}
	return s.Kind + " (" + s.Task + "): " + s.Reason
}

// kind is one figure type, registered by the file that draws it (one
// figure per file: fig_<name>.go). build makes the figure for one task, or
// returns why it cannot.
type kind struct {
	order         int // place in the report, ascending
	name, summary string
	build         func(d *Data, task string) ([]*Figure, string)
	// few, when set, marks a kind that few tasks have data for (the
	// safety figure, of the safety-guard task): the tasks without are not
	// reported one by one, and few is the one skip reason when no task has
	// any.
	few string
}

// kinds are the figure types, in the order the report shows them.
var kinds []kind

// register adds a figure kind; a name registered twice panics.
func register(k kind) {
	if slices.ContainsFunc(kinds, func(o kind) bool { return o.name == k.name }) {
		panic("plots: figure " + k.name + " registered twice")
	}
	kinds = append(kinds, k)
	slices.SortStableFunc(kinds, func(a, b kind) int { return cmp.Compare(a.order, b.order) })
}

// Kinds lists the figure kinds, in report order, with a one-line summary.
func Kinds() [][2]string {
	out := make([][2]string, len(kinds))
	for i, k := range kinds {
		out[i] = [2]string{k.name, k.summary}
	}
	return out
}

// Figures builds every figure the data supports, per task, for the kinds
// named in only (all when empty). A kind or task without data gives a Skip.
func Figures(d *Data, only []string) ([]*Figure, []Skip, error) {
	for _, o := range only {
		if !slices.ContainsFunc(kinds, func(k kind) bool { return k.name == o }) {
			names := make([]string, len(kinds))
			for i, k := range kinds {
				names[i] = k.name
			}
			return nil, nil, fmt.Errorf("plots: unknown figure %q (known: %s)", o, strings.Join(names, ", "))
		}
	}
	tasks := d.Tasks()
	var figs []*Figure
	var skips []Skip
	if len(tasks) == 0 {
		return nil, []Skip{{Kind: "all", Reason: "no successful trials"}}, nil
	}
	for _, k := range kinds {
		if len(only) > 0 && !slices.Contains(only, k.name) {
			continue
		}
		n := len(figs)
		for _, t := range tasks {
			fs, why := k.build(d, t)
			if len(fs) == 0 && k.few == "" {
				skips = append(skips, Skip{Kind: k.name, Task: t, Reason: why})
			}
			figs = append(figs, fs...)
		}
		if k.few != "" && len(figs) == n {
			skips = append(skips, Skip{Kind: k.name, Reason: k.few})
		}
	}
	return figs, skips, nil
}
