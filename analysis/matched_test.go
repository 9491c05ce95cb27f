package analysis

import (
	"math"
	"testing"
)

func TestInterpolate(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name   string
		xs, ys []float64
		x0     float64
		want   float64
		ok     bool
	}{
		{"between two points", []float64{1, 3}, []float64{10, 30}, 2, 20, true},
		{"unsorted input", []float64{3, 1, 2}, []float64{0, 4, 2}, 2.5, 1, true},
		{"at a point", []float64{1, 2, 3}, []float64{5, 7, 9}, 2, 7, true},
		{"at the ends", []float64{1, 2}, []float64{5, 7}, 1, 5, true},
		{"equal x merge to their mean", []float64{1, 1, 3}, []float64{0, 4, 6}, 2, 4, true},
		{"non-monotone y", []float64{0, 1, 2}, []float64{0, 10, 0}, 1.5, 5, true},
		{"below the range", []float64{1, 2}, []float64{5, 7}, 0.5, 0, false},
		{"above the range", []float64{1, 2}, []float64{5, 7}, 2.5, 0, false},
		{"one point elsewhere", []float64{1}, []float64{5}, 1.5, 0, false},
		{"one point there", []float64{1}, []float64{5}, 1, 5, true},
		{"no points", nil, nil, 1, 0, false},
		{"NaN points dropped", []float64{1, nan, 3}, []float64{1, 100, 3}, 2, 2, true},
		{"NaN level", []float64{1, 3}, []float64{1, 3}, nan, 0, false},
	} {
		got, ok := Interpolate(tc.xs, tc.ys, tc.x0)
		if ok != tc.ok || (ok && math.Abs(got-tc.want) > 1e-12) {
			t.Errorf("%s: Interpolate(%v, %v, %v) = %v, %v; want %v, %v", tc.name, tc.xs, tc.ys, tc.x0, got, ok, tc.want, tc.ok)
		}
	}
}

func TestReadAt(t *testing.T) {
	// Two configurations (lr) × two seeds; seed 1's losses sit 0.1 above
	// seed 0's.
	runs := []Run{
		{Config: 0, Seed: 0, X: 1.0, Y: 4}, {Config: 1, Seed: 0, X: 3.0, Y: 0},
		{Config: 0, Seed: 1, X: 1.1, Y: 6}, {Config: 1, Seed: 1, X: 3.1, Y: 2},
	}
	for _, tc := range []struct {
		level   float64
		reached bool
		values  []float64
	}{
		{2.0, true, []float64{2, 4.2}},
		{1.05, true, []float64{3.9, 6}}, // seed 1 starts at 1.1: its nearest run
		{3.05, true, []float64{0, 2.1}},
		{0.9, false, nil},
		{3.2, false, nil},
	} {
		m := ReadAt(runs, tc.level)
		if m.Reached != tc.reached || len(m.Values) != len(tc.values) {
			t.Errorf("ReadAt(%v) = reached %v values %v; want %v %v", tc.level, m.Reached, m.Values, tc.reached, tc.values)
			continue
		}
		for i := range tc.values {
			if math.Abs(m.Values[i]-tc.values[i]) > 1e-9 {
				t.Errorf("ReadAt(%v) values %v, want %v", tc.level, m.Values, tc.values)
				break
			}
		}
		if tc.reached && (len(m.Seeds) != 2 || m.Summary.N != 2) {
			t.Errorf("ReadAt(%v): seeds %v, summary n %d", tc.level, m.Seeds, m.Summary.N)
		}
	}
}
