package methods

import (
	"fmt"

	"peftbench/nn"
)

// Norm tuners (NormTuner) through the registry: the calls a trainer and the
// sweep loader make for a method that adapts norm layers instead of linear
// ones.

// TunesNorms reports whether method adapts norm layers (implements
// NormTuner) rather than the targeted linear layers.
func TunesNorms(method string) bool {
	m, err := Lookup(method)
	if err != nil {
		return false
	}
	_, ok := m.(NormTuner)
	return ok
}

func normTuner(method string) (NormTuner, error) {
	m, err := Lookup(method)
	if err != nil {
		return nil, err
	}
	nt, ok := m.(NormTuner)
	if !ok {
		return nil, fmt.Errorf("methods: %s adapts linear layers, not norm layers", method)
	}
	return nt, nil
}

// CheckNorms checks resolved options against the norm layers of a model, at
// sweep-load time, for a norm tuner.
func CheckNorms(method string, o Options, norms []NormShape) error {
	nt, err := normTuner(method)
	if err != nil {
		return err
	}
	return nt.CheckNorms(o, norms)
}

// AttachNormsResolved checks resolved options against the model's norm
// layers and attaches the norm tuner method to them.
func AttachNormsResolved(method string, norms []*nn.Norm, o Options, rng *nn.RNG) (Attachment, error) {
	nt, err := normTuner(method)
	if err != nil {
		return nil, err
	}
	if err := nt.CheckNorms(o, NormShapes(norms)); err != nil {
		return nil, err
	}
	for _, n := range norms {
		if n.Tuned != nil {
			return nil, fmt.Errorf("methods: %s: norm %s is already tuned", method, n.Name)
		}
	}
	return nt.AttachNorms(norms, o, rng)
}

// TrainableNormParamsResolved is a norm tuner's formula count for the
// model's norm layers.
func TrainableNormParamsResolved(method string, norms []NormShape, o Options) (int64, error) {
	nt, err := normTuner(method)
	if err != nil {
		return 0, err
	}
	return nt.TrainableNormParams(norms, o), nil
}
