package tasks

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

var (
	mu       sync.RWMutex
	registry = map[string]Task{}
)

// Register makes a task available by name, like database/sql drivers. It
// panics if name is empty, t is nil, name is already registered, or
// t.Info().Name differs from name.
func Register(name string, t Task) {
	mu.Lock()
	defer mu.Unlock()
	if name == "" || t == nil {
		panic("tasks: Register: empty name or nil task")
	}
	if _, dup := registry[name]; dup {
		panic("tasks: Register called twice for " + name)
	}
	if in := t.Info().Name; in != name {
		panic(fmt.Sprintf("tasks: Register: name %q but Info().Name %q", name, in))
	}
	registry[name] = t
}

// Lookup returns the task registered under name. An unknown name errors
// with the nearest registered names.
func Lookup(name string) (Task, error) {
	mu.RLock()
	t, ok := registry[name]
	mu.RUnlock()
	if ok {
		return t, nil
	}
	msg := fmt.Sprintf("tasks: unknown task %q", name)
	if near := nearest(name, Names()); len(near) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", quoteOr(near))
	}
	return nil, fmt.Errorf("%s", msg)
}

// Names returns the registered task names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Infos returns the Info of every registered task, sorted by name.
func Infos() []Info {
	var infos []Info
	for _, n := range Names() {
		t, _ := Lookup(n)
		infos = append(infos, t.Info())
	}
	return infos
}

// New resolves opts for the named task and builds an instance.
func New(name string, opts map[string]any) (Instance, error) {
	t, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	o, err := ResolveOptions(name, opts)
	if err != nil {
		return nil, err
	}
	return t.New(o)
}

// Layers returns the linear layers of the named task's model for opts,
// without pretraining.
func Layers(name string, opts map[string]any) ([]LayerShape, error) {
	t, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	o, err := ResolveOptions(name, opts)
	if err != nil {
		return nil, err
	}
	return t.Layers(o), nil
}

// nearest returns the candidates closest to name in edit distance, closest
// first, among those within max(2, len(name)/3) edits; at most three.
func nearest(name string, candidates []string) []string {
	limit := max(2, len(name)/3)
	type cand struct {
		s string
		d int
	}
	var cs []cand
	for _, c := range candidates {
		if d := levenshtein(strings.ToLower(name), strings.ToLower(c)); d <= limit {
			cs = append(cs, cand{c, d})
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return a.d - b.d })
	var out []string
	for i := 0; i < len(cs) && i < 3; i++ {
		out = append(out, cs[i].s)
	}
	return out
}

func quoteOr(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, " or ")
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
