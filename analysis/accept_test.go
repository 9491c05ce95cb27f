package analysis

import (
	"math"
	"strings"
	"testing"
)

func TestCheckData(t *testing.T) {
	row := func(vs ...float64) []float64 { return vs }
	for _, tc := range []struct {
		name, form string
		x          [][]float64
		cols       []string
		want       string // "" = accepted
	}{
		{"enough", "linear", [][]float64{row(1), row(2), row(3)}, []string{"target_loss"}, ""},
		{"as many as parameters", "linear", [][]float64{row(1), row(2)}, []string{"target_loss"}, "2 usable observations"},
		{"constant predictor", "power-P", [][]float64{row(5), row(5), row(5), row(5)}, []string{"trainable_params"}, "trainable_params takes one value (5)"},
		{"second predictor constant", "power", [][]float64{row(1, 9), row(2, 9), row(3, 9), row(4, 9), row(5, 9)}, []string{"trainable_params", "steps"}, "steps takes one value"},
		{"form's names", "power-N", [][]float64{row(1), row(1), row(1), row(1)}, nil, "N takes one value"},
		{"unknown form", "cubic", nil, nil, "unknown form"},
	} {
		err := CheckData(tc.form, tc.x, tc.cols)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: CheckData = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestAccept(t *testing.T) {
	fit := func(r2 float64, lo, hi []float64) *Fit {
		return &Fit{Params: []string{"c", "A"}, Values: []float64{1, 2}, CILo: lo, CIHi: hi, R2: r2}
	}
	for _, tc := range []struct {
		name string
		f    *Fit
		want []string // nil = accepted
	}{
		{"good", fit(0.93, []float64{0.9, 1.5}, []float64{1.1, 2.5}), nil},
		{"at the threshold", fit(MinR2, []float64{0.9, 1.5}, []float64{1.1, 2.5}), nil},
		// The report's forgetting law of issue 17: R² 0.18, zero-width CIs.
		{"low R² and zero width", fit(0.18, []float64{1, 2}, []float64{1, 2}), []string{"R² = 0.18 below 0.5", "zero-width 95% CI of c, A"}},
		{"one zero width", fit(0.99, []float64{0.9, 2}, []float64{1.1, 2}), []string{"zero-width 95% CI of A"}},
		// Noise-free data: every resample refits the same law, exactly.
		{"exact", fit(1-1e-9, []float64{1, 2}, []float64{1, 2}), nil},
		{"undefined R²", fit(math.NaN(), []float64{0.9, 1.5}, []float64{1.1, 2.5}), []string{"R² undefined"}},
		{"NaN interval", fit(0.9, []float64{math.NaN(), 1.5}, []float64{1.1, 2.5}), []string{"zero-width 95% CI of c"}},
	} {
		err := tc.f.Accept()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: Accept = %v, want nil", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted, want %q", tc.name, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Accept = %v, want it to say %q", tc.name, err, w)
			}
		}
	}
}
