package sweeps

import (
	"regexp"

	"peftbench/internal/targets"
)

// AllLinear is the target pattern that selects every linear layer a task
// lists, after HF PEFT's "all-linear".
const AllLinear = targets.AllLinear

// MatchTarget reports whether a target pattern selects a layer name; the
// grammar (plain names, globs, "re:", "all-linear") is internal/targets'.
func MatchTarget(pattern, layer string) (bool, error) { return targets.Match(pattern, layer) }

// Targeted returns the layers, in order, that any of the patterns selects.
func Targeted(patterns []string, layers []Layer) ([]Layer, error) {
	res := make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		re, err := targets.Compile(p)
		if err != nil {
			return nil, err
		}
		res[i] = re
	}
	var out []Layer
	for _, l := range layers {
		for _, re := range res {
			if re.MatchString(l.Name) {
				out = append(out, l)
				break
			}
		}
	}
	return out, nil
}
