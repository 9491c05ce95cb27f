package analysis

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// lowRankBase returns W0 = U0·diag(s)·V0ᵀ with s_i = 10·0.9^i, n×n, and its
// factors.
func synthBase(rng *rand.Rand, n int) (w0, u0, v0 *mat.Dense, s []float64) {
	u0, v0 = randOrthonormal(rng, n, n), randOrthonormal(rng, n, n)
	s = make([]float64, n)
	for i := range s {
		s[i] = 10 * math.Pow(0.9, float64(i))
	}
	return compose(u0, s, v0), u0, v0, s
}

func compose(u *mat.Dense, s []float64, v *mat.Dense) *mat.Dense {
	var us, w mat.Dense
	us.Mul(u, mat.NewDiagDense(len(s), s))
	w.Mul(&us, v.T())
	return &w
}

func TestIntruders(t *testing.T) {
	const n = 256
	rng := rand.New(rand.NewPCG(7, 7))
	w0, u0, v0, s := synthBase(rng, n)
	base, err := DecomposeBase(w0)
	if err != nil {
		t.Fatal(err)
	}
	eps := []float64{0.1, 0.3, 0.5, 0.7, 0.9}

	// planted adds p new directions, orthonormal and orthogonal to the top
	// 20 base directions, with singular values above σ₁ of W0.
	planted := func(p int) *mat.Dense {
		x := randOrthonormal(rng, n, n)
		// Project out the top-20 base directions, then re-orthonormalise.
		top := u0.Slice(0, n, 0, 20)
		var c, proj mat.Dense
		c.Mul(top.T(), x)
		proj.Mul(top, &c)
		x.Sub(x, &proj)
		xs := orth(mat.DenseCopyOf(x.Slice(0, n, 0, p)))
		y := randOrthonormal(rng, n, p)
		amp := make([]float64, p)
		for i := range amp {
			amp[i] = 30 - 5*float64(i)
		}
		var w mat.Dense
		w.Add(w0, compose(xs, amp, y))
		return &w
	}
	perturbed := func(scale float64) *mat.Dense {
		var w mat.Dense
		w.Scale(scale, randDense(rng, n, n))
		w.Add(w0, &w)
		return &w
	}
	permuted := func() *mat.Dense {
		ps := make([]float64, n)
		for i, j := range rng.Perm(n) {
			ps[i] = s[j]
		}
		return compose(u0, ps, v0)
	}
	for _, tc := range []struct {
		name string
		w    *mat.Dense
		want []int // count per eps
	}{
		{"planted-1", planted(1), []int{-1, -1, 1, 1, 1}},
		{"planted-3", planted(3), []int{-1, -1, 3, 3, 3}},
		{"small-full-rank", perturbed(1e-3), []int{0, 0, 0, 0, 0}},
		{"permuted-values", permuted(), []int{0, 0, 0, 0, 0}},
		{"unchanged", w0, []int{0, 0, 0, 0, 0}},
	} {
		for _, m := range []SVDMethod{Exact, Randomized} {
			name := tc.name + map[SVDMethod]string{Exact: "/exact", Randomized: "/randomized"}[m]
			t.Run(name, func(t *testing.T) {
				rep, err := Intruders(base, tc.w, IntruderOptions{K: 10, Eps: eps, TopK: TopKOptions{Method: m}})
				if err != nil {
					t.Fatal(err)
				}
				if rep.Residual > 1e-6 {
					t.Errorf("residual %g", rep.Residual)
				}
				for e := range eps {
					if tc.want[e] >= 0 && rep.Counts[e] != tc.want[e] {
						t.Errorf("ε=%v: %d intruders, want %d; max|cos| = %v", eps[e], rep.Counts[e], tc.want[e], maxCosList(rep))
					}
				}
			})
		}
	}
}

func maxCosList(r *IntruderReport) []float64 {
	var out []float64
	for _, d := range r.Dirs {
		out = append(out, math.Round(d.MaxCos*1000)/1000)
	}
	return out
}

// TestIntrudersPlantedAreTop checks that the planted directions are the ones
// flagged: the top tuned directions in order of their planted amplitude.
func TestIntrudersFlagsTopDirections(t *testing.T) {
	const n = 128
	rng := rand.New(rand.NewPCG(3, 9))
	w0, _, _, _ := synthBase(rng, n)
	base, err := DecomposeBase(w0)
	if err != nil {
		t.Fatal(err)
	}
	// A LoRA-like update B·A of rank 2 with large scale.
	var delta, w mat.Dense
	delta.Mul(randDense(rng, n, 2), randDense(rng, 2, n))
	delta.Scale(2, &delta)
	w.Add(w0, &delta)
	rep, err := Intruders(base, &w, IntruderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.K != 10 || len(rep.Eps) != 1 || rep.Eps[0] != 0.5 {
		t.Fatalf("defaults: K=%d ε=%v", rep.K, rep.Eps)
	}
	for j, d := range rep.Dirs {
		if want := j < 2; d.Intruder[0] != want {
			t.Errorf("direction %d (σ=%.2f, max|cos|=%.3f): intruder=%v, want %v", j, d.Sigma, d.MaxCos, d.Intruder[0], want)
		}
	}
}

func TestIntrudersShapeMismatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	base, err := DecomposeBase(randDense(rng, 8, 6))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Intruders(base, randDense(rng, 6, 8), IntruderOptions{}); err == nil {
		t.Error("no error for a tuned matrix of another shape")
	}
}

func TestMaxCos(t *testing.T) {
	base, err := DecomposeBase(eye(4))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		u    []float64
		want float64
	}{
		{[]float64{0, 0, 1, 0}, 1},
		{[]float64{0, -0.6, 0.8, 0}, 0.8},
		{[]float64{0.5, 0.5, 0.5, 0.5}, 0.5},
	} {
		if got, _ := base.MaxCos(tc.u); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("MaxCos(%v) = %v, want %v", tc.u, got, tc.want)
		}
	}
}

func TestEffectiveRank(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sigma []float64
		want  float64
	}{
		{"identity-7", []float64{1, 1, 1, 1, 1, 1, 1}, 7},
		{"rank-1", []float64{5, 0, 0}, 1},
		{"two-equal", []float64{2, 2, 0, 0}, 2},
		{"zero", []float64{0, 0}, 0},
		{"3-1", []float64{3, 1}, math.Exp(-(0.75*math.Log(0.75) + 0.25*math.Log(0.25)))},
	} {
		if got := EffectiveRank(tc.sigma); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: EffectiveRank = %v, want %v", tc.name, got, tc.want)
		}
	}
	// From a matrix: the identity's singular values.
	s, err := SingularValues(eye(12))
	if err != nil {
		t.Fatal(err)
	}
	if got := EffectiveRank(s); math.Abs(got-12) > 1e-9 {
		t.Errorf("EffectiveRank(I₁₂) = %v", got)
	}
}

func TestEnergyRank(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, tc := range []struct {
		name  string
		sigma []float64
		frac  float64
		want  int
	}{
		{"3-1-1", []float64{3, 1, 1}, 0.9, 2}, // 9/11 < 0.9 ≤ 10/11
		{"exact-boundary", []float64{3, 1}, 0.9, 1},
		{"flat", []float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0.9, 9},
		{"all", []float64{1, 1}, 1, 2},
		{"zero", []float64{0, 0}, 0.9, 0},
	} {
		if got := EnergyRank(tc.sigma, tc.frac); got != tc.want {
			t.Errorf("%s: EnergyRank = %d, want %d", tc.name, got, tc.want)
		}
	}
	// A rank-r matrix with equal singular values needs r at 100%; at 90% of
	// flat energy ⌈0.9r⌉.
	for _, r := range []int{1, 4, 16} {
		u, v := randOrthonormal(rng, 40, r), randOrthonormal(rng, 30, r)
		ones := make([]float64, r)
		for i := range ones {
			ones[i] = 1
		}
		s, err := SingularValues(compose(u, ones, v))
		if err != nil {
			t.Fatal(err)
		}
		if got := EnergyRank(s, 1); got != r {
			t.Errorf("rank-%d matrix: EnergyRank(1) = %d", r, got)
		}
		if got, want := EnergyRank(s, 0.9), int(math.Ceil(0.9*float64(r)-1e-9)); got != want {
			t.Errorf("rank-%d matrix: EnergyRank(0.9) = %d, want %d", r, got, want)
		}
	}
}

func TestAnalyzeLayer(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 4))
	w0, _, _, _ := synthBase(rng, 64)
	base, err := DecomposeBase(w0)
	if err != nil {
		t.Fatal(err)
	}
	var delta, w mat.Dense
	delta.Mul(randDense(rng, 64, 3), randDense(rng, 3, 64))
	w.Add(w0, &delta)
	ls, err := AnalyzeLayer(base, w0, &w, IntruderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ls.EnergyRank90 < 1 || ls.EnergyRank90 > 3 {
		t.Errorf("EnergyRank90 of a rank-3 update = %d", ls.EnergyRank90)
	}
	if ls.EffRankDelta < 1 || ls.EffRankDelta > 3 {
		t.Errorf("EffRankDelta of a rank-3 update = %v", ls.EffRankDelta)
	}
	if len(ls.BaseSigma) != 10 || ls.BaseSigma[0] != base.Sigma[0] {
		t.Errorf("BaseSigma = %v", ls.BaseSigma)
	}
}

// TestTopKRandomizedMatchesExact compares the block Krylov path with the
// exact one on a decaying and on a flat (Gaussian) spectrum.
func TestTopKRandomizedMatchesExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	w0, _, _, _ := synthBase(rng, 150)
	for _, tc := range []struct {
		name string
		w    *mat.Dense
	}{
		{"decaying", w0},
		{"gaussian-wide", randDense(rng, 120, 300)},
		{"gaussian-tall", randDense(rng, 300, 120)},
	} {
		ex, err := TopK(tc.w, 10, TopKOptions{Method: Exact})
		if err != nil {
			t.Fatal(err)
		}
		rd, err := TopK(tc.w, 10, TopKOptions{Method: Randomized, Tol: 1e-10})
		if err != nil {
			t.Fatal(err)
		}
		if rd.Residual > 1e-10 {
			t.Errorf("%s: residual %g after %d blocks", tc.name, rd.Residual, rd.Iters)
		}
		for j := range 10 {
			if math.Abs(ex.Sigma[j]-rd.Sigma[j]) > 1e-8*ex.Sigma[0] {
				t.Errorf("%s: σ[%d] exact %v, randomized %v", tc.name, j, ex.Sigma[j], rd.Sigma[j])
			}
			if cos := math.Abs(mat.Dot(ex.U.ColView(j), rd.U.ColView(j))); cos < 0.999 {
				t.Errorf("%s: |cos| of vector %d = %v", tc.name, j, cos)
			}
		}
	}
	if _, err := TopK(eye(3), 4, TopKOptions{}); err == nil {
		t.Error("no error for k > min(rows, cols)")
	}
}

func TestTotalCounts(t *testing.T) {
	a := &IntruderReport{Eps: []float64{0.3, 0.5}, Counts: []int{1, 2}}
	b := &IntruderReport{Eps: []float64{0.3, 0.5}, Counts: []int{0, 5}}
	got, err := TotalCounts([]*IntruderReport{a, b})
	if err != nil || got[0] != 1 || got[1] != 7 {
		t.Errorf("TotalCounts = %v, %v", got, err)
	}
	if _, err := TotalCounts([]*IntruderReport{a, {Eps: []float64{0.5}, Counts: []int{1}}}); err == nil {
		t.Error("no error for mismatched thresholds")
	}
}
