// Package registry is a set of named values registered at init time, in
// the style of database/sql drivers: methods and tasks each keep one.
package registry

import (
	"fmt"
	"slices"
	"sync"

	"peftbench/internal/suggest"
)

// Set holds the values registered under names. Its zero value is not
// usable; make one with New.
type Set[T any] struct {
	pkg, kind string // for messages: "methods", "method"
	mu        sync.RWMutex
	m         map[string]T
}

// New returns an empty set whose messages name pkg and kind, e.g.
// New[Method]("methods", "method").
func New[T any](pkg, kind string) *Set[T] {
	return &Set[T]{pkg: pkg, kind: kind, m: map[string]T{}}
}

// Register adds v under name. It panics if name is empty, name is already
// registered, or self (the name v gives itself) differs from name.
func (s *Set[T]) Register(name, self string, v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		panic(fmt.Sprintf("%s: Register: empty name", s.pkg))
	}
	if _, dup := s.m[name]; dup {
		panic(fmt.Sprintf("%s: Register called twice for %s", s.pkg, name))
	}
	if self != name {
		panic(fmt.Sprintf("%s: Register: name %q but Info().Name %q", s.pkg, name, self))
	}
	s.m[name] = v
}

// Lookup returns the value registered under name. An unknown name errors
// with the nearest registered names.
func (s *Set[T]) Lookup(name string) (T, error) {
	s.mu.RLock()
	v, ok := s.m[name]
	s.mu.RUnlock()
	if !ok {
		return v, fmt.Errorf("%s: unknown %s %q%s", s.pkg, s.kind, name, suggest.DidYouMean(name, s.Names()))
	}
	return v, nil
}

// Names returns the registered names, sorted.
func (s *Set[T]) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.m))
	for n := range s.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
