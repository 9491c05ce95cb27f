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
