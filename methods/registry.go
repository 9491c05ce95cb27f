package methods

import (
	"peftbench/internal/registry"
)

var registered = registry.New[Method]("methods", "method")

// Register makes a method available by name, like database/sql drivers. It
// panics if name is empty, m is nil, name is already registered, or
// m.Info().Name differs from name.
func Register(name string, m Method) {
	if m == nil {
		panic("methods: Register: nil method " + name)
	}
	registered.Register(name, m.Info().Name, m)
}

// Lookup returns the method registered under name. An unknown name errors
// with the nearest registered names.
func Lookup(name string) (Method, error) { return registered.Lookup(name) }

// Names returns the registered method names, sorted.
func Names() []string { return registered.Names() }

// Infos returns the Info of every registered method, sorted by name.
func Infos() []Info {
	var infos []Info
	for _, n := range Names() {
		m, _ := Lookup(n)
		infos = append(infos, m.Info())
	}
	return infos
}
