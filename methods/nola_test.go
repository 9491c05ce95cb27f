package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	// Only the frozen Kaiming offset A₀ comes from the trial's stream; the
	// Python side draws the bases itself with torch.manual_seed.
	export := func(l *nn.Linear) map[string][]float32 {
		return map[string][]float32{"nola_A0": slices.Clone(l.Adapter.(*NOLA).A0.Data)}
	}
	addTorchCase(torchSpec{name: "nola", method: "nola", opts: map[string]any{"rank": 4, "num_basis": 64},
		lr: 2e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "nola-kl", method: "nola", opts: map[string]any{"rank": 4, "alpha": 16, "num_basis": 48, "num_basis_b": 24, "basis_seed": 7},
		lr: 2e-2, clip: 0.05, export: export})
}

// TestNOLABases: only the k + l coefficients train; the bases are
// U(±1/√k) (B's ±1/√l), regenerated from basis_seed alone (a second
// attachment with another trial seed has the same bases and another A₀),
// distinct per layer and per factor, and unchanged by training; ΔW
// (Merged − W0) is s·(Σ b_j·B_j)·(A₀ + Σ a_i·A_i), computed here in
// float64 from the bases.
func TestNOLABases(t *testing.T) {
	const r, k, nb, alpha = 4, 32, 16, 8.0
	opts := map[string]any{"rank": r, "alpha": alpha, "num_basis": k, "num_basis_b": nb, "basis_seed": 3}
	m := refModels(1)[0]
	att := attachRef(t, m, "nola", opts)
	m2 := refModels(1)[0]
	if _, err := Attach("nola", m2.targets, opts, nn.NewRNG(99, "method")); err != nil {
		t.Fatal(err)
	}
	before := map[*nn.Tensor][]float32{}
	for i, l := range m.targets {
		a, a2 := l.Adapter.(*NOLA), m2.targets[i].Adapter.(*NOLA)
		if !slices.Equal(a.BasisA.Data, a2.BasisA.Data) || !slices.Equal(a.BasisB.Data, a2.BasisB.Data) {
			t.Errorf("%s: bases depend on the trial's seed", l.Name)
		}
		if slices.Equal(a.A0.Data, a2.A0.Data) {
			t.Errorf("%s: A₀ does not depend on the trial's seed", l.Name)
		}
		for _, c := range []struct {
			b *nn.Tensor
			n int
		}{{a.BasisA, k}, {a.BasisB, nb}} {
			if bound, hi := 1/math.Sqrt(float64(c.n)), maxAbs(c.b.Data); hi > bound || hi < 0.99*bound {
				t.Errorf("%s %s: max |basis| %.4g, want U(±1/√%d) = ±%.4g", l.Name, c.b.Name, hi, c.n, bound)
			}
			before[c.b] = slices.Clone(c.b.Data)
		}
		same := true // the unscaled draws of A's and B's bases
		for j := range 8 {
			same = same && math.Abs(float64(a.BasisA.Data[j])*math.Sqrt(k)-float64(a.BasisB.Data[j])*math.Sqrt(nb)) < 1e-5
		}
		if same {
			t.Errorf("%s: A's and B's bases start alike: one seed", l.Name)
		}
		if i > 0 && slices.Equal(a.BasisA.Data[:8], m.targets[0].Adapter.(*NOLA).BasisA.Data[:8]) {
			t.Errorf("%s: bases equal layer 0's", l.Name)
		}
	}
	var trainable int
	for _, p := range att.Params() {
		trainable += p.T.Size()
	}
	if want := len(m.targets) * (k + nb); trainable != want {
		t.Errorf("%d trainable numbers, want (k + l)·layers = %d", trainable, want)
	}
	train(t, m, att, 4, 2e-2)
	for _, l := range m.targets {
		a := l.Adapter.(*NOLA)
		for b, d := range before {
			if !slices.Equal(b.Data, d) {
				t.Errorf("%s: training changed a basis", b.Name)
			}
		}
		if maxAbs(a.CA.Data) == 0 || maxAbs(a.CB.Data) == 0 {
			t.Fatalf("%s: coefficients did not train", l.Name)
		}
		af := make([]float64, r*l.In)
		for j := range af {
			af[j] = float64(a.A0.Data[j])
			for i := range k {
				af[j] += float64(a.CA.Data[i]) * float64(a.BasisA.Data[i*r*l.In+j])
			}
		}
		bf := make([]float64, l.Out*r)
		for j := range bf {
			for i := range nb {
				bf[j] += float64(a.CB.Data[i]) * float64(a.BasisB.Data[i*l.Out*r+j])
			}
		}
		got := deltaOf(l)
		var worst, scale float64
		for o := range l.Out {
			for j := range l.In {
				var acc float64
				for p := range r {
					acc += bf[o*r+p] * af[p*l.In+j]
				}
				want := alpha / r * acc
				worst = max(worst, math.Abs(float64(got[o*l.In+j])-want))
				scale = max(scale, math.Abs(want))
			}
		}
		if worst > 1e-4*scale {
			t.Errorf("%s: ΔW off s·B·A by %.3g (max %.3g)", l.Name, worst, scale)
		}
	}
}

// TestNOLATorchBasis: bases are torch's: after torch.manual_seed(0),
// torch.zeros(1, 2, 3) through nn.init.uniform_(−1, 1) (the authors'
// GenerateParams) gives the first values; after manual_seed(5) a 64×4×24
// block times 1/√64 the second (torch 2.x CPU, printed by /usr/bin/python3).
func TestNOLATorchBasis(t *testing.T) {
	for _, c := range []struct {
		seed          uint64
		n, rows, cols int
		at            []int
		want          []float64
	}{
		{0, 1, 2, 3, []int{0, 1, 2, 3, 4, 5}, []float64{-0.007486820220947266, 0.5364435911178589, -0.8230451345443726, -0.7359390258789062, -0.3851543664932251, 0.26815736293792725}},
		{5, 64, 4, 24, []int{0, 1, 64*4*24 - 2, 64*4*24 - 1}, []float64{0.08256296813488007, -0.09347227215766907, 0.0004012584686279297, 0.08858545124530792}},
	} {
		got := nolaBasis(c.seed, c.n, c.rows, c.cols)
		for i, j := range c.at {
			if float64(got.Data[j]) != c.want[i] {
				t.Errorf("seed %d: basis[%d] = %.9g, torch gives %.9g", c.seed, j, got.Data[j], c.want[i])
			}
		}
	}
}
