package train_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/analysis"
	"peftbench/results"
	"peftbench/sweeps"
	"peftbench/train"
)

// TestMitigateIntrudersHandComputed: W0 = [[3,0],[0,1],[0,0]] has left
// singular vectors e1, e2; W = [[3,0],[0,0],[0,2]] has σ = (3, 2) with
// u = (e1, e3), v = (e1, e2). Direction 1 (e3) is orthogonal to both base
// vectors: an intruder; direction 0 is not. HF's formula,
// W + (λ−1)·σ₁·u₁v₁ᵀ, at λ = 0.75 gives [[3,0],[0,0],[0,1.5]].
func TestMitigateIntrudersHandComputed(t *testing.T) {
	w0 := mat.NewDense(3, 2, []float64{3, 0, 0, 1, 0, 0})
	w := mat.NewDense(3, 2, []float64{3, 0, 0, 0, 0, 2})
	for _, c := range []struct {
		lambda float64
		want   []float64
	}{
		{0.75, []float64{3, 0, 0, 0, 0, 1.5}},
		{0, []float64{3, 0, 0, 0, 0, 0}},
		{1, []float64{3, 0, 0, 0, 0, 2}},
	} {
		m, err := train.MitigateIntruders(context.Background(), w0, w, train.MitigationOptions{Lambda: c.lambda})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Intruders) != 1 || m.Intruders[0] != 1 {
			t.Errorf("λ=%v: intruders %v, want [1]", c.lambda, m.Intruders)
		}
		for i, v := range m.W.RawMatrix().Data {
			if math.Abs(v-c.want[i]) > 1e-12 {
				t.Errorf("λ=%v: W' = %v, want %v", c.lambda, m.W.RawMatrix().Data, c.want)
				break
			}
		}
	}
}

// TestMitigateIntruders plants intruders in a random W0 (directions
// orthogonal to every base left singular vector, among the top k) and
// checks: λ = 0 removes them, λ = 0.75 pushes one planted just above the
// k-th base singular value out of the top k, so the intruder count falls;
// λ = 1 and a tuned matrix without intruders are the identity, bit for
// bit; and the singular values of W' are those of W with the intruders'
// scaled by λ.
func TestMitigateIntruders(t *testing.T) {
	const rows, cols, k = 24, 12, 3
	rng := rand.New(rand.NewPCG(1, 2))
	// W0 = U·diag(σ)·Vᵀ with a gap after the top 3: 10, 8, 6, then ≤ 1.
	orthonormal := func(n, m int) *mat.Dense {
		a := mat.NewDense(n, m, nil)
		for i := range n {
			for j := range m {
				a.Set(i, j, rng.NormFloat64())
			}
		}
		var qr mat.QR
		qr.Factorize(a)
		var q mat.Dense
		qr.QTo(&q)
		return mat.DenseCopyOf(q.Slice(0, n, 0, m))
	}
	u0, v0 := orthonormal(rows, cols), orthonormal(cols, cols)
	sig0 := []float64{10, 8, 6, 1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2}
	var us mat.Dense
	us.Mul(u0, mat.NewDiagDense(cols, sig0))
	w0 := mat.NewDense(rows, cols, nil)
	w0.Mul(&us, v0.T())
	base, err := analysis.DecomposeBase(w0)
	if err != nil {
		t.Fatal(err)
	}
	// unit returns a random unit vector of length n, orthogonal to the
	// columns of q (nil: any).
	unit := func(n int, q *mat.Dense) *mat.VecDense {
		x := mat.NewVecDense(n, nil)
		for i := range n {
			x.SetVec(i, rng.NormFloat64())
		}
		if q != nil {
			var p mat.VecDense
			p.MulVec(q.T(), x)
			var back mat.VecDense
			back.MulVec(q, &p)
			x.SubVec(x, &back)
		}
		x.ScaleVec(1/mat.Norm(x, 2), x)
		return x
	}
	// plant adds σ·a·bᵀ per σ: a orthogonal to every base left singular
	// vector (and the other planted ones), b a weak base right singular
	// vector, so the planted direction barely mixes with the base's.
	plant := func(sigmas ...float64) *mat.Dense {
		w := mat.DenseCopyOf(w0)
		var q *mat.Dense = base.U
		for i, s := range sigmas {
			a := unit(rows, q)
			b := mat.NewVecDense(cols, mat.Col(nil, cols-1-i, v0))
			var ab mat.Dense
			ab.Outer(s, a, b)
			w.Add(w, &ab)
			// the next planted direction is orthogonal to this one too
			qa := mat.NewDense(rows, q.RawMatrix().Cols+1, nil)
			qa.Slice(0, rows, 0, q.RawMatrix().Cols).(*mat.Dense).Copy(q)
			qa.SetCol(q.RawMatrix().Cols, a.RawVector().Data)
			q = qa
		}
		return w
	}
	top := base.Sigma
	count := func(w mat.Matrix) int {
		rep, err := analysis.Intruders(base, w, analysis.IntruderOptions{K: k, Eps: []float64{0.5}})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Counts[0]
	}
	small := mat.DenseCopyOf(w0)
	small.Scale(1.01, small) // same singular vectors: no intruder
	for _, c := range []struct {
		name          string
		w             *mat.Dense
		lambda        float64
		before, after int
		identity      bool
	}{
		{"two removed", plant(3*top[0], 2*top[0]), 0, 2, 0, false},
		{"pushed out of the top k", plant(6.5), 0.75, 1, 0, false}, // 0.75 · 6.5 < 6
		{"lambda 1", plant(3 * top[0]), 1, 1, 1, true},
		{"no intruders", small, 0.5, 0, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if n := count(c.w); n != c.before {
				t.Fatalf("planted %d intruders, want %d", n, c.before)
			}
			m, err := train.MitigateIntruders(context.Background(), w0, c.w, train.MitigationOptions{Lambda: c.lambda, K: k})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Intruders) != c.before {
				t.Errorf("mitigated %d directions, want %d", len(m.Intruders), c.before)
			}
			if n := count(m.W); n != c.after {
				t.Errorf("%d intruders after mitigation, want %d", n, c.after)
			}
			if c.identity && !mat.Equal(m.W, c.w) {
				t.Error("not the identity")
			}
			// σ(W') = σ(W) with each intruder's scaled by λ.
			want, _ := analysis.SingularValues(c.w)
			for _, j := range m.Intruders {
				want[j] *= c.lambda
			}
			got, _ := analysis.SingularValues(m.W)
			wantSorted := append([]float64(nil), want...)
			sortDesc(wantSorted)
			for i := range got {
				if math.Abs(got[i]-wantSorted[i]) > 1e-9*top[0] {
					t.Errorf("σ(W')[%d] = %v, want %v", i, got[i], wantSorted[i])
				}
			}
		})
	}
}

func sortDesc(x []float64) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && x[j] > x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

// TestRunMitigated trains one LoRA trial plain and with intruder
// mitigation: at λ = 1 every summary metric is the plain trial's, bit for
// bit; at λ = 0 the mitigation rescales some directions (reported as
// intruders_mitigated) and the weights file holds the mitigated merged
// weights, with fewer intruders than the plain ones.
func TestRunMitigated(t *testing.T) {
	cfg := teacherShift("lora", map[string]any{"rank": 2, "alpha": 16})
	cfg.LR = 3e-2
	plain, plainDir, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	same := cfg
	same.MitigateIntruders = &sweeps.IntruderMitigation{Lambda: 1, Epsilon: 0.5, TopK: 10}
	one, _, err := run(t, same)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range plain.summary {
		if !train.IsTiming(k) && one.summary[k] != v {
			t.Errorf("λ = 1: %s = %v, plain %v", k, one.summary[k], v)
		}
	}
	zero := cfg
	zero.MitigateIntruders = &sweeps.IntruderMitigation{Lambda: 0, Epsilon: 0.5, TopK: 10}
	mit, mitDir, err := run(t, zero)
	if err != nil {
		t.Fatal(err)
	}
	n := mit.summary["intruders_mitigated"]
	if !(n > 0) {
		t.Fatalf("intruders_mitigated = %v, want > 0 (plain trial: a rank-2 LoRA)", n)
	}
	intruders := func(dir string) int64 {
		layers, err := analysis.ReadLayers(filepath.Join(dir, train.WeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		var s results.Shard
		if err := analysis.FillShard(context.Background(), &s, layers, analysis.ShardOptions{}); err != nil {
			t.Fatal(err)
		}
		return s.Trial.Intruders[0].Count
	}
	before, after := intruders(plainDir), intruders(mitDir)
	t.Logf("intruders %d plain, %d after mitigating %v directions at λ = 0; forgetting %.4g → %.4g", before, after, n, plain.summary["forgetting"], mit.summary["forgetting"])
	if !(after < before) {
		t.Errorf("intruders %d after mitigation, %d before", after, before)
	}
}
