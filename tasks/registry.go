package tasks

import (
	"fmt"
	"peftbench/internal/suggest"
	"slices"
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
	msg += suggest.DidYouMean(name, Names())
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
