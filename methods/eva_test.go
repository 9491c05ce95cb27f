package methods

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

func init() {
	// EVA's A comes from the inputs' PCA and B = 0: nothing random is
	// left to export. With one calibration batch (32 rows) the second
	// layer's PCA (48 features) takes the Gram-matrix route.
	addTorchCase(torchSpec{name: "eva", method: "eva", opts: map[string]any{"rank": 4, "alpha": 8}, lr: 1e-2, clip: 0.05})
	addTorchCase(torchSpec{name: "eva-whiten", method: "eva",
		opts: map[string]any{"rank": 4, "alpha": 8, "whiten": true, "adjust_scaling_factors": false, "calib_batches": 1}, lr: 1e-2, clip: 0.05})
}

// evaInputs draws calibration batch b of one layer: n rows of mean μ
// (offset, not centred) plus z·diag(spread)·Q, Q a fixed random rotation,
// so the principal directions are Q's rows weighted by spread.
func evaInputs(rng *nn.RNG, n, in int, spread []float64, offset float64) func(b int) []float32 {
	q := nn.New(in, in)
	rng.FillNormal(q, 0, 1)
	var f mat.QR
	f.Factorize(dense(q.Data, in, in))
	var rot mat.Dense
	f.QTo(&rot)
	mu := nn.New(in)
	rng.FillNormal(mu, 0, 1)
	return func(b int) []float32 {
		r := nn.NewRNG(uint64(100+b), "eva-batch")
		z := nn.New(n, in)
		r.FillNormal(z, 0, 1)
		x := make([]float32, n*in)
		for i := range n {
			for j := range in {
				v := offset * float64(mu.Data[j])
				for p := range in {
					v += float64(z.Data[i*in+p]) * spread[p] * rot.At(j, p)
				}
				x[i*in+j] = float32(v)
			}
		}
		return x
	}
}

// TestEVAComponents: two 16→16 layers (one rank class) see inputs with
// different spectra; each adapter's A holds the top principal directions
// of its layer's inputs stacked over the calibration batches (computed
// here by an SVD of the centred data), whitened by 1/√σ when asked; B = 0;
// the ranks are the winners of the r·L best explained-variance ratios,
// capped at round(ρ·r) (a layer can lose its adapter); s = α/r (adjusted)
// or α/r_l.
func TestEVAComponents(t *testing.T) {
	decay := func(k int, top, rest float64) []float64 {
		s := make([]float64, 16)
		for i := range s {
			s[i] = rest
			if i < k {
				s[i] = top * math.Pow(0.8, float64(i))
			}
		}
		return s
	}
	flat := decay(0, 0, 1)
	for _, c := range []struct {
		name       string
		opts       map[string]any
		spread     [2][]float64
		wantRanks  []int
		whiten     bool
		adjustedSc bool
	}{
		// 2 strong directions vs isotropic: the budget 8 goes 2 + 6.
		{"concentrated+flat", map[string]any{"rank": 4, "calib_batches": 3}, [2][]float64{decay(2, 6, 0.1), flat}, []int{2, 6}, false, true},
		// 4 strong directions (ratios ≥ 0.2, above the flat layer's top
		// sample ratio, ~0.16 for 40 rows in 16 dimensions) take the whole
		// budget 4 (cap 4): the flat layer loses its adapter.
		{"flat+strong", map[string]any{"rank": 2, "calib_batches": 2, "whiten": true, "adjust_scaling_factors": false},
			[2][]float64{flat, {8, 7.5, 7, 6.5, .2, .2, .2, .2, .2, .2, .2, .2, .2, .2, .2, .2}}, []int{0, 4}, true, false},
		// ρ = 1: no redistribution.
		{"rho=1", map[string]any{"rank": 3, "rho": 1, "calib_batches": 2}, [2][]float64{decay(2, 6, 0.1), flat}, []int{3, 3}, false, true},
		// 12 rows of 16 features: the PCA goes through the Gram matrix.
		{"few-rows", map[string]any{"rank": 2, "calib_batches": 2, "whiten": true}, [2][]float64{decay(2, 6, 0.1), flat}, []int{2, 2}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := nn.NewRNG(9, "eva")
			ls := []*nn.Linear{nn.NewLinear("a", 16, 16, true, rng), nn.NewLinear("b", 16, 16, true, rng)}
			n := 20
			if c.name == "few-rows" {
				n = 6
			}
			gens := [2]func(int) []float32{evaInputs(rng, n, 16, c.spread[0], 3), evaInputs(rng, n, 16, c.spread[1], 3)}
			fwd := func(g *nn.Graph, b int) {
				for k, l := range ls {
					l.Forward(g, nn.FromData(gens[k](b), n, 16))
				}
			}
			att, err := Attach("eva", ls, c.opts, nn.NewRNG(1, "method"))
			if err != nil {
				t.Fatal(err)
			}
			if err := att.(InputCalibrator).CalibrateInputs(EstimateInputs(fwd)); err != nil {
				t.Fatal(err)
			}
			nb := c.opts["calib_batches"].(int)
			alpha, r := 8.0, c.opts["rank"].(int)
			var got []int
			params := 0
			for k, l := range ls {
				if l.Adapter == nil {
					got = append(got, 0)
					continue
				}
				a := loraOf(t, l)
				got = append(got, a.Rank)
				params += a.Rank * (l.In + l.Out)
				// PCA here: SVD of the centred stack.
				var x []float32
				for b := range nb {
					x = append(x, gens[k](b)...)
				}
				rows := n * nb
				xc := dense(x, rows, 16)
				for j := range 16 {
					var m float64
					for i := range rows {
						m += xc.At(i, j)
					}
					for i := range rows {
						xc.Set(i, j, xc.At(i, j)-m/float64(rows))
					}
				}
				var f mat.SVD
				f.Factorize(xc, mat.SVDThin)
				var v mat.Dense
				f.VTo(&v)
				sv := f.Values(nil)
				for p := range a.Rank {
					var dot, norm float64
					for j := range 16 {
						av := float64(a.A.Data[p*16+j])
						dot += av * v.At(j, p)
						norm += av * av
					}
					wantNorm := 1.0
					if c.whiten {
						wantNorm = 1 / sv[p]
					}
					if math.Abs(math.Abs(dot)-math.Sqrt(wantNorm)) > 1e-4*math.Sqrt(wantNorm) || math.Abs(norm-wantNorm) > 1e-4*wantNorm {
						t.Errorf("%s: A row %d: |⟨a, v_%d⟩| = %.6g, ‖a‖² = %.6g; want the principal direction with ‖a‖² = %.6g", l.Name, p, p, math.Abs(dot), norm, wantNorm)
					}
				}
				if maxAbs(a.B.Data) != 0 {
					t.Errorf("%s: B ≠ 0", l.Name)
				}
				wantS := alpha / float64(r)
				if !c.adjustedSc {
					wantS = alpha / float64(a.Rank)
				}
				if math.Abs(float64(a.Scale)-wantS) > 1e-6 {
					t.Errorf("%s: s = %g, want %g", l.Name, a.Scale, wantS)
				}
			}
			if !slices.Equal(got, c.wantRanks) {
				t.Errorf("ranks %v, want %v", got, c.wantRanks)
			}
			if want := int(formulaCount(t, "eva", ls, c.opts)); params != want || nn.CountParams(att.Params()) != want {
				t.Errorf("%d trainable (Params: %d), formula %d", params, nn.CountParams(att.Params()), want)
			}
		})
	}
}

// formulaCount is the formula count of method on layers.
func formulaCount(t *testing.T, method string, layers []*nn.Linear, opts map[string]any) int64 {
	t.Helper()
	n, err := TrainableParams(method, Shapes(layers), opts)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
