package methods

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		k := l.Adapter.(*LoKr)
		m := map[string][]float32{}
		for _, p := range k.Params() {
			if maxAbs(p.T.Data) != 0 { // the tensors drawn; HF's zero-initialised ones are rebuilt in Python
				m[p.Name[len(l.Name)+1:]] = slices.Clone(p.T.Data)
			}
		}
		return m
	}
	// rank 2 with decompose_both: W1 and W2 are both low-rank products on
	// 48×24 (6·8 × 4·6) and 40×48 (5·8 × 6·8).
	addTorchCase(torchSpec{name: "lokr", method: "lokr", opts: map[string]any{"rank": 2, "alpha": 4, "decompose_both": true},
		lr: 1e-2, clip: 0.05, export: export})
	// rank 8, decompose_factor 4: full W1 and W2 (4×4 ⊗ 12×6, 4×4 ⊗ 10×12)
	// from the LyCORIS init.
	addTorchCase(torchSpec{name: "lokr-lycoris", method: "lokr", opts: map[string]any{"rank": 8, "alpha": 8, "decompose_factor": 4, "init_weights": "lycoris"},
		lr: 1e-2, clip: 0.05, export: export})
}

// TestLoKrFactorization holds lokrFactorization to HF PEFT's docstring
// examples and a few more.
func TestLoKrFactorization(t *testing.T) {
	for _, c := range []struct{ dim, factor, m, n int }{
		{256, -1, 16, 16}, {128, -1, 8, 16}, {127, -1, 1, 127}, {128, 4, 4, 32},
		{784, -1, 28, 28}, {48, -1, 6, 8}, {40, -1, 5, 8}, {24, -1, 4, 6}, {24, 8, 8, 3}, {24, 5, 4, 6}, {24, 0, 1, 24},
	} {
		if m, n := lokrFactorization(c.dim, c.factor); m != c.m || n != c.n {
			t.Errorf("factorization(%d, %d) = (%d, %d), want (%d, %d)", c.dim, c.factor, m, n, c.m, c.n)
		}
	}
}

// TestLoKrKronecker: ΔW of a trained LoKr layer is a Kronecker product
// W1 ⊗ W2 of the stated factor shapes (a×c)⊗(b×d): rearranged as the
// (a·c)×(b·d) matrix R[(i,j),(p,q)] = ΔW[i·b+p, j·d+q] it has rank one, and
// it equals (α/r)·W1 ⊗ W2 computed here from the factors. The factors are
// stored full or low-rank by HF's rules.
func TestLoKrKronecker(t *testing.T) {
	for _, c := range []struct {
		opts         map[string]any
		out, in      int
		a, b, c, d   int
		full1, full2 bool
	}{
		{map[string]any{"rank": 8}, 48, 24, 6, 8, 4, 6, true, true},
		{map[string]any{"rank": 2, "alpha": 3}, 48, 24, 6, 8, 4, 6, true, false},
		{map[string]any{"rank": 2, "decompose_both": true}, 40, 48, 5, 8, 6, 8, false, false},
		{map[string]any{"rank": 1, "decompose_factor": 4, "init_weights": "lycoris"}, 40, 48, 4, 10, 4, 12, true, false},
		{map[string]any{"rank": 3, "decompose_factor": 0, "init_weights": "false"}, 40, 48, 1, 40, 1, 48, true, false},
	} {
		t.Run(fmt.Sprintf("%v/%dx%d", c.opts, c.out, c.in), func(t *testing.T) {
			l := nn.NewLinear("fc", c.in, c.out, true, nn.NewRNG(1, "init"))
			x := nn.New(16, c.in)
			nn.NewRNG(1, "x").FillNormal(x, 0, 1)
			target := nn.New(16, c.out)
			nn.NewRNG(1, "y").FillNormal(target, 0, 1)
			att, err := Attach("lokr", []*nn.Linear{l}, c.opts, nn.NewRNG(1, "method"))
			if err != nil {
				t.Fatal(err)
			}
			k := l.Adapter.(*LoKr)
			if k.A != c.a || k.B != c.b || k.C != c.c || k.D != c.d || (k.W1 != nil) != c.full1 || (k.W2 != nil) != c.full2 {
				t.Fatalf("layout a,b,c,d = %d,%d,%d,%d full W1 %v W2 %v; want %d,%d,%d,%d %v %v",
					k.A, k.B, k.C, k.D, k.W1 != nil, k.W2 != nil, c.a, c.b, c.c, c.d, c.full1, c.full2)
			}
			mse := func(g *nn.Graph) *nn.Tensor { d := g.Sub(l.Forward(g, x), target); return g.Mean(g.Mul(d, d)) }
			tr := newTrainer(t, att, mse)
			for s := range 3 {
				tr.step(s, 3, 1e-2)
			}
			o, _ := ResolveOptions("lokr", 0, c.opts)
			s := o.Float("alpha") / float64(o.Int("rank"))
			w1, w2 := factor64(k.W1, k.W1A, k.W1B), factor64(k.W2, k.W2A, k.W2B)
			dw := deltaOf(l)
			var worst, scale float64
			for i := range c.a {
				for p := range c.b {
					for j := range c.c {
						for q := range c.d {
							want := s * w1[i*c.c+j] * w2[p*c.d+q]
							got := float64(dw[(i*c.b+p)*c.in+j*c.d+q])
							worst = max(worst, math.Abs(got-want))
							scale = max(scale, math.Abs(want))
						}
					}
				}
			}
			if scale == 0 || worst > 1e-5*scale {
				t.Errorf("ΔW off (α/r)·W1⊗W2 by %.3g (max %.3g)", worst, scale)
			}
			r := make([]float32, len(dw))
			for i := range c.a {
				for p := range c.b {
					for j := range c.c {
						for q := range c.d {
							r[(i*c.c+j)*(c.b*c.d)+p*c.d+q] = dw[(i*c.b+p)*c.in+j*c.d+q]
						}
					}
				}
			}
			if rk := hadamardRank(r, c.a*c.c, c.b*c.d); rk != 1 {
				t.Errorf("ΔW rearranged by (a×c)⊗(b×d) blocks has rank %d, want 1 (a Kronecker product)", rk)
			}
		})
	}
}

// factor64 is full, or fa·fb, in float64.
func factor64(full, fa, fb *nn.Tensor) []float64 {
	if full != nil {
		w := make([]float64, len(full.Data))
		for i, v := range full.Data {
			w[i] = float64(v)
		}
		return w
	}
	m, r, n := fa.Shape[0], fa.Shape[1], fb.Shape[1]
	w := make([]float64, m*n)
	for i := range m {
		for p := range r {
			for j := range n {
				w[i*n+j] += float64(fa.Data[i*r+p]) * float64(fb.Data[p*n+j])
			}
		}
	}
	return w
}

// TestLoKrInit: which factor HF zeroes under each init_weights.
func TestLoKrInit(t *testing.T) {
	for _, c := range []struct {
		init  string
		zeros []string
	}{{"true", []string{"lokr_w1_a"}}, {"lycoris", []string{"lokr_w2_b"}}, {"false", nil}} {
		l := nn.NewLinear("fc", 48, 40, true, nn.NewRNG(1, "init"))
		if _, err := Attach("lokr", []*nn.Linear{l}, map[string]any{"rank": 1, "decompose_both": true, "init_weights": c.init}, nn.NewRNG(1, "method")); err != nil {
			t.Fatal(err)
		}
		for _, p := range l.Adapter.Params() {
			zero := maxAbs(p.T.Data) == 0
			if want := slices.Contains(c.zeros, p.Name[3:]); zero != want {
				t.Errorf("init_weights=%s: %s zero %v, want %v", c.init, p.Name, zero, want)
			}
			if !zero {
				bound := 1 / math.Sqrt(float64(p.T.Shape[1]))
				if hi := maxAbs(p.T.Data); hi >= bound {
					t.Errorf("init_weights=%s: max |%s| = %.4g ≥ Kaiming bound %.4g", c.init, p.Name, hi, bound)
				}
			}
		}
		if c.init != "false" && maxAbs(deltaOf(l)) != 0 {
			t.Errorf("init_weights=%s: ΔW ≠ 0 at init", c.init)
		}
	}
}

func TestLoKrDropout(t *testing.T) {
	for _, rescale := range []bool{false, true} {
		t.Run(fmt.Sprintf("rank_dropout/scale=%v", rescale), func(t *testing.T) {
			checkRankDropout(t, "lokr", map[string]any{"rank": 2, "init_weights": "false", "rank_dropout": 0.3, "rank_dropout_scale": rescale}, rescale)
		})
	}
	t.Run("module_dropout", func(t *testing.T) {
		checkModuleDropout(t, "lokr", map[string]any{"rank": 2, "init_weights": "false", "module_dropout": 0.5})
	})
}
