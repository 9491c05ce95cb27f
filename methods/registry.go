package methods

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

var (
	mu       sync.RWMutex
	registry = map[string]Method{}
)

// Register makes a method available by name, like database/sql drivers. It
// panics if name is empty, m is nil, or name is already registered.
func Register(name string, m Method) {
	mu.Lock()
	defer mu.Unlock()
	if name == "" || m == nil {
		panic("methods: Register: empty name or nil method")
	}
	if _, dup := registry[name]; dup {
		panic("methods: Register called twice for " + name)
	}
	if in := m.Info().Name; in != name {
		panic(fmt.Sprintf("methods: Register: name %q but Info().Name %q", name, in))
	}
	registry[name] = m
}

// Lookup returns the method registered under name. An unknown name errors
// with the nearest registered names.
func Lookup(name string) (Method, error) {
	mu.RLock()
	m, ok := registry[name]
	mu.RUnlock()
	if ok {
		return m, nil
	}
	msg := fmt.Sprintf("methods: unknown method %q", name)
	if near := Nearest(name, Names()); len(near) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", quoteOr(near))
	}
	return nil, fmt.Errorf("%s", msg)
}

// Names returns the registered method names, sorted.
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

// Infos returns the Info of every registered method, sorted by name.
func Infos() []Info {
	var infos []Info
	for _, n := range Names() {
		m, _ := Lookup(n)
		infos = append(infos, m.Info())
	}
	return infos
}

// Nearest returns the candidates closest to name in edit distance, closest
// first, among those within max(2, len(name)/3) edits; at most three.
func Nearest(name string, candidates []string) []string {
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

// levenshtein is the edit distance between a and b (runes).
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
