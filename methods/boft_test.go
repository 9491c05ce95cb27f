package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	boftInit := func(l *nn.Linear) map[string][]float32 {
		a := l.Adapter.(*BOFT)
		return map[string][]float32{"boft_R": slices.Clone(a.R.Data), "boft_s": slices.Clone(a.S.Data)}
	}
	// Layers 48×24 and 40×48.
	addTorchCase(torchSpec{name: "boft", method: "boft", opts: map[string]any{"boft_block_size": 4}, lr: 5e-2, clip: 0.05})
	// 3 factors of 2×2 blocks: permutations at every factor.
	addTorchCase(torchSpec{name: "boft-butterfly", method: "boft",
		opts: map[string]any{"boft_block_size": 2, "boft_n_butterfly_factor": 3}, lr: 5e-2, clip: 0.05})
	// boft_block_num: 6 blocks of 4 (fc1) and of 8 (fc2), 2 factors, random init.
	addTorchCase(torchSpec{name: "boft-blocknum-random", method: "boft",
		opts: map[string]any{"boft_block_size": 0, "boft_block_num": 6, "boft_n_butterfly_factor": 2, "init_weights": false},
		lr:   2e-2, clip: 0.05, export: boftInit})
}

// TestBOFTButterflyPerm holds butterflyPerm to HF PEFT's
// block_butterfly_perm (values printed by testdata/torch/boft.py's copy).
func TestBOFTButterflyPerm(t *testing.T) {
	for _, c := range []struct {
		n, b, r, f int
		want       []int
	}{
		{16, 2, 2, 2, []int{0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15}},
		{16, 4, 2, 2, nil},
		{24, 6, 2, 1, nil},
		{32, 2, 2, 3, []int{0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 16, 17, 20, 21, 24, 25, 28, 29, 18, 19, 22, 23, 26, 27, 30, 31}},
		{32, 1, 4, 3, []int{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31}},
		{16, 8, 1, 0, nil},
	} {
		got, err := butterflyPerm(c.n, c.b, c.r, c.f)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("butterflyPerm(%d, %d, %d, %d) = %v, %v; want %v", c.n, c.b, c.r, c.f, got, err, c.want)
		}
	}
	if _, err := butterflyPerm(8, 4, 2, 1); err == nil {
		t.Error("b·r·2 > n accepted")
	}
}

// boftM64 assembles M = B_{m−1}⋯B_0, B_i = P_i·blockdiag(R_i)·P_iᵀ, in
// float64 from the adapter's rotation blocks and dense permutation
// matrices built as HF's perm2mat does (P[j, perm[j]] = 1), independently
// of the gathers the forward uses.
func boftM64(t *testing.T, a *BOFT, l *nn.Linear, o Options) []float64 {
	_, _, perms, err := boftLayout(o, Shapes([]*nn.Linear{l})[0])
	if err != nil {
		t.Fatal(err)
	}
	n, h := l.In, a.Block
	blocks := blocks64(a.op, a.R)
	mul := func(x, y []float64) []float64 {
		z := make([]float64, n*n)
		for i := range n {
			for k := range n {
				if v := x[i*n+k]; v != 0 {
					for j := range n {
						z[i*n+j] += v * y[k*n+j]
					}
				}
			}
		}
		return z
	}
	var m []float64
	for i := range a.Factors {
		p := make([]float64, n*n)
		pt := make([]float64, n*n)
		for j := range n {
			src := j
			if perms[i] != nil {
				src = perms[i][j]
			}
			p[j*n+src], pt[src*n+j] = 1, 1
		}
		bd := make([]float64, n*n)
		for d := range a.Blocks {
			r := blocks[i*a.Blocks+d]
			for x := range h {
				for y := range h {
					bd[(d*h+x)*n+d*h+y] = r[x*h+y]
				}
			}
		}
		bi := mul(p, mul(bd, pt))
		if m == nil {
			m = bi
		} else {
			m = mul(bi, m)
		}
	}
	return m
}

// TestBOFTDefiningProperties: identity at step 0 (M = I, s = 1); after
// training every Cayley block and the whole butterfly product M are
// orthogonal to 1e-5; the merged weight is diag(s)·W0·Mᵀ with M assembled
// from HF's permutation matrices; the adapted outputs are
// s ⊙ (x·M·W0ᵀ) + b (conformance checks them against the merged weight).
func TestBOFTDefiningProperties(t *testing.T) {
	for _, c := range []struct {
		name string
		opts map[string]any
	}{
		{"default", nil},
		{"butterfly2", map[string]any{"boft_block_size": 4, "boft_n_butterfly_factor": 2}},
		{"butterfly3", map[string]any{"boft_block_size": 2, "boft_n_butterfly_factor": 3}},
		{"blocknum", map[string]any{"boft_block_size": 0, "boft_block_num": 6, "boft_n_butterfly_factor": 2}},
		{"random", map[string]any{"boft_block_size": 8, "init_weights": false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := smallModel(5)
			base := eval(m.out)
			att := attachRef(t, m, "boft", c.opts)
			o, _ := ResolveOptions("boft", 0, c.opts)
			random := c.name == "random"
			if d := relDiff(eval(m.out), base); (d != 0) != random {
				t.Fatalf("step 0: outputs %g from the base model (random init %v)", d, random)
			}
			train(t, m, att, 8, 2e-2)
			for _, l := range m.targets {
				a := l.Adapter.(*BOFT)
				for j, r := range blocks64(a.op, a.R) {
					if d := orthDefect(r, a.Block); d > 1e-5 {
						t.Errorf("%s block %d: R off orthogonal by %g", l.Name, j, d)
					}
				}
				mm := boftM64(t, a, l, o)
				n := l.In
				if d := orthDefect(mm, n); d > 1e-5 {
					t.Errorf("%s: M off orthogonal by %g", l.Name, d)
				}
				var moved float64
				for i := range n {
					for j := range n {
						moved = max(moved, math.Abs(mm[i*n+j]-b2f(i == j)))
					}
				}
				if moved < 1e-3 {
					t.Errorf("%s: training left M at I (%g)", l.Name, moved)
				}
				got := l.Merged()
				var worst float64
				for r := range l.Out {
					for c := range n {
						var s float64
						for k := range n {
							s += float64(l.Weight.Data[r*n+k]) * mm[c*n+k]
						}
						worst = max(worst, math.Abs(float64(got[r*n+c])-float64(a.S.Data[r])*s))
					}
				}
				if worst > 1e-5 {
					t.Errorf("%s: merged weight %g from diag(s)·W0·Mᵀ", l.Name, worst)
				}
			}
		})
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestBOFTDropout: while training, ⌊p·D⌋ blocks of one factor are I and
// get no gradient; in evaluation none are.
func TestBOFTDropout(t *testing.T) {
	m := smallModel(5)
	att := attachRef(t, m, "boft", map[string]any{"boft_block_size": 4, "boft_n_butterfly_factor": 2, "boft_dropout": 0.5, "init_weights": false})
	a := m.targets[0].Adapter.(*BOFT)
	att.SetTraining(nn.NewRNG(1, "dropout"))
	g := nn.NewGraph()
	rots := a.op.apply(g, a.R)
	dropped := a.dropBlocks(g, rots)
	hh := a.Block * a.Block
	var ident []int
	for j := range a.Factors * a.Blocks {
		if orthDefect(toF64(dropped.Data[j*hh:(j+1)*hh]), a.Block) == 0 && dropped.Data[j*hh+1] == 0 && dropped.Data[j*hh] == 1 {
			ident = append(ident, j)
		}
	}
	if len(ident) != a.Blocks/2 || ident[0]/a.Blocks != ident[len(ident)-1]/a.Blocks {
		t.Fatalf("identity blocks %v, want %d in one factor of %d blocks", ident, a.Blocks/2, a.Blocks)
	}
	a.R.ZeroGrad()
	g.Backward(g.Sum(dropped))
	for _, j := range ident {
		for i, n := 0, a.op.inputLen(); i < n; i++ {
			if a.R.Grad[j*n+i] != 0 {
				t.Fatalf("dropped block %d has a gradient", j)
			}
		}
	}
	att.SetTraining(nil)
	if a.rng != nil {
		t.Fatal("SetTraining(nil) left dropout on")
	}
}

func toF64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}
