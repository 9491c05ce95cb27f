//go:build !race

package methods

// raceEnabled: the race detector is off (see race_test.go).
const raceEnabled = false
