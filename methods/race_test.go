//go:build race

package methods

// raceEnabled: the race detector is on. TestConformance then runs on the
// reference MLP and transformer only. The LM families run the same method
// code (and package lm's tests run its forward under the detector), and
// the plain run checks them; under -race they would add several minutes
// to CI for no concurrency the MLP and transformer do not exercise.
const raceEnabled = true
