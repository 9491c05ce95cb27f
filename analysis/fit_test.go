package analysis

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

func TestFitPowerLawRecovers(t *testing.T) {
	const c, a, alpha, beta = 0.5, 0.02, 0.3, 0.4
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 99))
		var x [][]float64
		var y []float64
		for _, p := range []float64{1e3, 3e3, 1e4, 3e4, 1e5} {
			for _, n := range []float64{100, 200, 400, 800, 1600, 3200} {
				x = append(x, []float64{p, n})
				y = append(y, c+a*math.Pow(p, alpha)*math.Pow(n, beta)+0.05*rng.NormFloat64())
			}
		}
		fit, err := FitForm("power", x, y, FitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if fit.R2 < 0.99 {
			t.Errorf("seed %d: R² = %v", seed, fit.R2)
		}
		for _, tc := range []struct {
			name string
			want float64
		}{{"alpha", alpha}, {"beta", beta}, {"c", c}, {"A", a}} {
			v, lo, hi, ok := fit.Param(tc.name)
			if !ok {
				t.Fatalf("no parameter %s in %v", tc.name, fit.Params)
			}
			if !(lo <= tc.want && tc.want <= hi) || !(lo <= v && v <= hi) {
				t.Errorf("seed %d: %s = %.4f, 95%% CI [%.4f, %.4f] misses the true %v", seed, tc.name, v, lo, hi, tc.want)
			}
			if hi-lo > 0.5*math.Abs(tc.want)+0.2 {
				t.Errorf("seed %d: %s CI [%v, %v] is uselessly wide", seed, tc.name, lo, hi)
			}
		}
		if got, want := fit.Predict([]float64{1e4, 400}), c+a*math.Pow(1e4, alpha)*math.Pow(400, beta); math.Abs(got-want) > 0.1 {
			t.Errorf("Predict = %v, want ≈ %v", got, want)
		}
	}
}

// TestFitLinearRecovers checks estimates and interval coverage over 20
// independent data sets: a 95% interval may miss in one of them by chance,
// so at least 16 must cover each true parameter.
func TestFitLinearRecovers(t *testing.T) {
	const a, b = 3.0, 0.8
	covered := map[string]int{}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 8))
		var lft, lf []float64
		for range 40 {
			x := 1 + 2*rng.Float64()
			lft = append(lft, x)
			lf = append(lf, a-b*x+0.05*rng.NormFloat64())
		}
		fit, err := FitLinear(lft, lf, FitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			want float64
		}{{"a", a}, {"b", b}} {
			v, lo, hi, _ := fit.Param(tc.name)
			if lo <= tc.want && tc.want <= hi {
				covered[tc.name]++
			}
			if math.Abs(v-tc.want) > 0.1 || hi-lo > 0.2 || !(lo <= v && v <= hi) {
				t.Errorf("seed %d: %s = %.4f, CI [%.4f, %.4f], true %v", seed, tc.name, v, lo, hi, tc.want)
			}
		}
		if fit.R2 < 0.95 {
			t.Errorf("seed %d: R² = %v", seed, fit.R2)
		}
		if seed == 0 {
			if _, err := json.Marshal(fit); err != nil {
				t.Error(err)
			}
			again, _ := FitLinear(lft, lf, FitOptions{})
			if again.CILo[1] != fit.CILo[1] {
				t.Error("bootstrap is not deterministic")
			}
		}
	}
	for _, name := range []string{"a", "b"} {
		if covered[name] < 16 {
			t.Errorf("95%% CI of %s covered the truth in %d of 20 data sets", name, covered[name])
		}
	}
}

func TestFitOtherForms(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	var xp, xn, x2 [][]float64
	var yp, yn, ym []float64
	for i := range 30 {
		p := math.Pow(10, 3+2*float64(i)/29)
		n := math.Pow(10, 2+1.5*float64((i*7)%30)/29)
		xp = append(xp, []float64{p})
		xn = append(xn, []float64{n})
		x2 = append(x2, []float64{p, n})
		yp = append(yp, 1+0.1*math.Pow(p, 0.25)+0.01*rng.NormFloat64())
		yn = append(yn, 2+0.3*math.Pow(n, 0.5)+0.01*rng.NormFloat64())
		ym = append(ym, 0.01*math.Pow(p, 0.2)*math.Pow(n, 0.3)*math.Exp(0.01*rng.NormFloat64()))
	}
	for _, tc := range []struct {
		form  string
		x     [][]float64
		y     []float64
		param string
		want  float64
	}{
		{"power-P", xp, yp, "alpha", 0.25},
		{"power-N", xn, yn, "beta", 0.5},
		{"multiplicative", x2, ym, "beta", 0.3},
	} {
		fit, err := FitForm(tc.form, tc.x, tc.y, FitOptions{Resamples: 100})
		if err != nil {
			t.Fatalf("%s: %v", tc.form, err)
		}
		v, lo, hi, _ := fit.Param(tc.param)
		if math.Abs(v-tc.want) > 0.05 || !(lo <= tc.want && tc.want <= hi) || fit.R2 < 0.98 {
			t.Errorf("%s: %s = %v [%v, %v], want %v; R² = %v", tc.form, tc.param, v, lo, hi, tc.want, fit.R2)
		}
	}
}

func TestFitErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		form string
		x    [][]float64
		y    []float64
	}{
		{"unknown", "cubic", [][]float64{{1}}, []float64{1}},
		{"lengths", "linear", [][]float64{{1}, {2}}, []float64{1}},
		{"arity", "power", [][]float64{{1}, {2}, {3}, {4}, {5}, {6}}, []float64{1, 2, 3, 4, 5, 6}},
		{"non-positive P", "power-P", [][]float64{{0}, {1}, {2}, {3}, {4}}, []float64{1, 2, 3, 4, 5}},
		{"too few", "linear", [][]float64{{1}, {2}}, []float64{1, 2}},
		{"constant predictor", "linear", [][]float64{{1}, {1}, {1}, {1}}, []float64{1, 2, 3, 4}},
	} {
		if _, err := FitForm(tc.form, tc.x, tc.y, FitOptions{Resamples: 20}); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
