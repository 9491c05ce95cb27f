package tasks

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

// TestPerturbRank checks that each layer's perturbation has rank
// min(k, out, in) and relative Frobenius size scale: a rank above a
// narrow head's width caps there instead of failing.
func TestPerturbRank(t *testing.T) {
	base := nn.NewMLP([]int{16, 64, 64, 5}, nn.NewRNG(1, "test"))
	for _, k := range []int{1, 4, 32} {
		p, err := perturb(base, k, 0.5, nn.NewRNG(2, "test"))
		if err != nil {
			t.Fatalf("k = %d: %v", k, err)
		}
		for i, l := range base.Layers {
			d := mat.NewDense(l.Out, l.In, nil)
			var wn, dn float64
			for j, w := range l.Weight.Data {
				x := float64(p.Layers[i].Weight.Data[j]) - float64(w)
				d.Set(j/l.In, j%l.In, x)
				wn += float64(w) * float64(w)
				dn += x * x
			}
			var svd mat.SVD
			if !svd.Factorize(d, mat.SVDNone) {
				t.Fatal("SVD failed")
			}
			sv := svd.Values(nil)
			rank := 0
			for _, s := range sv {
				if s > 1e-3*sv[0] {
					rank++
				}
			}
			if want := min(k, l.Out, l.In); rank != want {
				t.Errorf("k = %d, layer %s (%d×%d): ΔW has rank %d, want %d", k, l.Name, l.Out, l.In, rank, want)
			}
			if rel := math.Sqrt(dn / wn); math.Abs(rel-0.5) > 1e-3 {
				t.Errorf("k = %d, layer %s: ‖ΔW‖/‖W‖ = %.4f, want 0.5", k, l.Name, rel)
			}
		}
	}
}
