// Package catalog is the sweeps.Catalog of the method, task and executor
// registries: what sweep loading needs to know about them, without sweeps
// importing any.
package catalog

import (
	"fmt"
	"slices"

	"peftbench/methods"
	"peftbench/runner"
	"peftbench/sweeps"
	"peftbench/tasks"
)

// Registries is the sweeps.Catalog of the methods and tasks registries.
type Registries struct{}

var _ sweeps.Catalog = Registries{}

func (Registries) Methods() []string { return methods.Names() }
func (Registries) Tasks() []string   { return tasks.Names() }

func (Registries) HasRank(method string) bool {
	m, err := methods.Lookup(method)
	return err == nil && m.Info().HasRank
}

func (Registries) MethodOptions(method string) []string {
	m, err := methods.Lookup(method)
	if err != nil {
		return nil
	}
	var names []string
	for _, o := range m.Info().Options {
		names = append(names, o.Name)
	}
	return names
}

func (Registries) TaskOptions(task string) []string {
	t, err := tasks.Lookup(task)
	if err != nil {
		return nil
	}
	var names []string
	for _, o := range t.Info().Options {
		names = append(names, o.Name)
	}
	return names
}

// FromRank: the rank, and options declared FromRank (AdaLoRA's
// init_rank, ⌈1.5·rank⌉ by default).
// Executors lists the runner's registered executor kinds.
func (Registries) Executors() []string { return runner.ExecutorKinds() }

func (Registries) FromRank(method, key string) bool {
	m, err := methods.Lookup(method)
	if err != nil || !m.Info().HasRank {
		return false
	}
	i := slices.IndexFunc(m.Info().Options, func(o methods.Option) bool { return o.Name == key })
	return key == m.Info().RankOptionName() || i >= 0 && m.Info().Options[i].FromRank
}

// ResolveMethod resolves the method's options; values come as the sweep
// file wrote them ("2r"), and errors are the registry's *OptionError,
// which sweeps.OptionError is.
func (Registries) ResolveMethod(method string, rank int, opts map[string]any) (map[string]any, error) {
	o, err := methods.ResolveOptions(method, rank, opts)
	return o, err
}

func (Registries) ResolveTask(task string, opts map[string]any) (map[string]any, error) {
	o, err := tasks.ResolveOptions(task, opts)
	return o, err
}

var _ sweeps.TaskIdentifier = Registries{}

// TaskIdentity is tasks.Identity: a file-reading task's options with each
// path replaced by its content's digest.
func (Registries) TaskIdentity(task string, resolved map[string]any) (map[string]any, error) {
	return tasks.Identity(task, resolved)
}

func (Registries) Layers(task string, opts map[string]any) ([]sweeps.Layer, error) {
	return tasks.Layers(task, opts)
}

// CheckMethodLayers asks the method (methods.CheckLayers) whether its
// resolved options fit the targeted layers, so that the sweep loader
// refuses what the trainer would refuse, with the same rule. The rank is
// already in the resolved options.
func (Registries) CheckMethodLayers(method string, _ int, resolved map[string]any, layers []sweeps.Layer) error {
	return methods.CheckLayers(method, resolved, layers)
}

var _ sweeps.TaskChecker = Registries{}

// CheckMethodTask refuses a method that tunes norm layers (LN tuning,
// methods.NormTuner) on a task whose model has none (the MLP tasks), and
// checks its resolved options against the task's norm layers
// (methods.CheckNorms), as the trainer would when it attaches.
func (Registries) CheckMethodTask(method string, resolved map[string]any, task string, taskOpts map[string]any) error {
	if !methods.TunesNorms(method) {
		return nil
	}
	norms, err := tasks.Norms(task, taskOpts)
	if err != nil {
		return err
	}
	if len(norms) == 0 {
		return fmt.Errorf("%s: task %s has no norm layers (LayerNorm, RMSNorm) to tune", method, task)
	}
	return methods.CheckNorms(method, resolved, norms)
}
