package tasks

import (
	"peftbench/internal/registry"
)

var registered = registry.New[Task]("tasks", "task")

// Register makes a task available by name, like database/sql drivers. It
// panics if name is empty, t is nil, name is already registered, or
// t.Info().Name differs from name.
func Register(name string, t Task) {
	if t == nil {
		panic("tasks: Register: nil task " + name)
	}
	registered.Register(name, t.Info().Name, t)
}

// Lookup returns the task registered under name. An unknown name errors
// with the nearest registered names.
func Lookup(name string) (Task, error) { return registered.Lookup(name) }

// Names returns the registered task names, sorted.
func Names() []string { return registered.Names() }

// Infos returns the Info of every registered task, sorted by name.
func Infos() []Info {
	var infos []Info
	for _, n := range Names() {
		t, _ := Lookup(n)
		infos = append(infos, t.Info())
	}
	return infos
}

// resolved looks the named task up and resolves opts for it.
func resolved(name string, opts map[string]any) (Task, Options, error) {
	t, err := Lookup(name)
	if err != nil {
		return nil, nil, err
	}
	o, err := ResolveOptions(name, opts)
	return t, o, err
}

// New resolves opts for the named task and builds an instance.
func New(name string, opts map[string]any) (Instance, error) {
	t, o, err := resolved(name, opts)
	if err != nil {
		return nil, err
	}
	return t.New(o)
}

// Layers returns the linear layers of the named task's model for opts,
// without pretraining.
func Layers(name string, opts map[string]any) ([]LayerShape, error) {
	t, o, err := resolved(name, opts)
	if err != nil {
		return nil, err
	}
	return t.Layers(o), nil
}

// Norms returns the norm layers (LayerNorm, RMSNorm) of the named task's
// model for opts, without pretraining: what LN tuning would adapt. An MLP
// task has none (an empty list, no error).
func Norms(name string, opts map[string]any) ([]NormShape, error) {
	t, o, err := resolved(name, opts)
	if err != nil {
		return nil, err
	}
	if nl, ok := t.(normLister); ok {
		return nl.Norms(o), nil
	}
	return nil, nil
}
