package methods

import (
	"fmt"
	"peftbench/internal/suggest"
	"slices"
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
	msg += suggest.DidYouMean(name, Names())
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
