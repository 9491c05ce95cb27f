// Package catalog is the sweeps.Catalog of the method and task registries:
// what sweep loading needs to know about methods and tasks, without sweeps
// importing either.
package catalog

import (
	"errors"

	"peftbench/methods"
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

func (Registries) ResolveMethod(method string, rank int, opts map[string]any) (map[string]any, error) {
	o, err := methods.ResolveOptions(method, rank, opts)
	var oe *methods.OptionError
	if errors.As(err, &oe) {
		return nil, &sweeps.OptionError{Key: oe.Key, Msg: oe.Msg}
	}
	return map[string]any(o), err
}

func (Registries) ResolveTask(task string, opts map[string]any) (map[string]any, error) {
	o, err := tasks.ResolveOptions(task, opts)
	var oe *tasks.OptionError
	if errors.As(err, &oe) {
		return nil, &sweeps.OptionError{Key: oe.Key, Msg: oe.Msg}
	}
	return map[string]any(o), err
}

func (Registries) Layers(task string, opts map[string]any) ([]sweeps.Layer, error) {
	shapes, err := tasks.Layers(task, opts)
	if err != nil {
		return nil, err
	}
	ls := make([]sweeps.Layer, len(shapes))
	for i, s := range shapes {
		ls[i] = sweeps.Layer{Name: s.Name, Out: s.Out, In: s.In}
	}
	return ls, nil
}

// CheckMethodLayers asks the method (methods.CheckLayers) whether its
// resolved options fit the targeted layers, so that the sweep loader
// refuses what the trainer would refuse, with the same rule. The rank is
// already in the resolved options.
func (Registries) CheckMethodLayers(method string, _ int, resolved map[string]any, layers []sweeps.Layer) error {
	shapes := make([]methods.LayerShape, len(layers))
	for i, l := range layers {
		shapes[i] = methods.LayerShape{Name: l.Name, Out: l.Out, In: l.In}
	}
	err := methods.CheckLayers(method, methods.Options(resolved), shapes)
	var oe *methods.OptionError
	if errors.As(err, &oe) {
		return &sweeps.OptionError{Key: oe.Key, Msg: oe.Msg}
	}
	return err
}
