package sweeps

import "peftbench/internal/targets"

// AllLinear is the target pattern that selects every linear layer a task
// lists but an output layer (Layer.Output), after HF PEFT's "all-linear".
const AllLinear = targets.AllLinear

// MatchTarget reports whether a target pattern selects a layer name; the
// grammar (plain names, globs, "re:", "all-linear") is internal/targets'.
func MatchTarget(pattern, layer string) (bool, error) { return targets.Match(pattern, layer) }

// Targeted returns the layers, in order, that any of the patterns selects
// (internal/targets: all-linear leaves out a layer marked Output).
func Targeted(patterns []string, layers []Layer) ([]Layer, error) {
	return targets.Targeted(patterns, layers)
}
