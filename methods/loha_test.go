package methods

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		a := l.Adapter.(*LoHa)
		m := map[string][]float32{}
		for _, t := range []*nn.Tensor{a.W1A, a.W1B, a.W2A, a.W2B} {
			m[t.Name[len(l.Name)+1:]] = slices.Clone(t.Data)
		}
		return m
	}
	addTorchCase(torchSpec{name: "loha", method: "loha", opts: map[string]any{"rank": 4, "alpha": 8},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "loha-random-init", method: "loha", opts: map[string]any{"rank": 2, "alpha": 4, "init_weights": false},
		lr: 1e-2, clip: 0.01, export: export})
}

// hadamardRank is the numerical rank of w (rows×cols): singular values
// above 1e-5 of the largest.
func hadamardRank(w []float32, rows, cols int) int {
	var svd mat.SVD
	if !svd.Factorize(dense(w, rows, cols), mat.SVDNone) {
		panic("SVD failed")
	}
	s := svd.Values(nil)
	n := 0
	for _, v := range s {
		if v > 1e-5*s[0] {
			n++
		}
	}
	return n
}

// deltaOf returns Merged − W0 of l's adapter.
func deltaOf(l *nn.Linear) []float32 { return sub(l.Merged(), l.Weight.Data) }

// TestLoHaHadamard: ΔW (from Merged, which shares the forward's code) is
// (α/r)·(W1a·W1b) ⊙ (W2a·W2b), computed here in float64 from the factors,
// after training from HF's init and from a random init; its rank is r²
// (the Hadamard product of two rank-r matrices), above LoRA's r.
func TestLoHaHadamard(t *testing.T) {
	for _, c := range []struct {
		rank  int
		alpha float64
		init  bool
		steps int
	}{{2, 8, true, 4}, {3, 1, false, 0}, {4, 16, false, 2}} {
		t.Run(fmt.Sprintf("r=%d,alpha=%g,init=%v", c.rank, c.alpha, c.init), func(t *testing.T) {
			m := refModels(1)[0]
			att := attachRef(t, m, "loha", map[string]any{"rank": c.rank, "alpha": c.alpha, "init_weights": c.init})
			train(t, m, att, c.steps, 1e-2)
			for _, l := range m.targets {
				a := l.Adapter.(*LoHa)
				r, s := c.rank, c.alpha/float64(c.rank)
				want := make([]float64, l.Out*l.In)
				for i := range l.Out {
					for j := range l.In {
						var h1, h2 float64
						for p := range r {
							h1 += float64(a.W1A.Data[i*r+p]) * float64(a.W1B.Data[p*l.In+j])
							h2 += float64(a.W2A.Data[i*r+p]) * float64(a.W2B.Data[p*l.In+j])
						}
						want[i*l.In+j] = s * h1 * h2
					}
				}
				got := deltaOf(l)
				var worst, scale float64
				for i, w := range want {
					worst = max(worst, math.Abs(float64(got[i])-w))
					scale = max(scale, math.Abs(w))
				}
				if scale == 0 {
					t.Fatalf("%s: ΔW = 0 after %d steps", l.Name, c.steps)
				}
				if worst > 1e-4*scale {
					t.Errorf("%s: ΔW off (α/r)·(W1a·W1b)⊙(W2a·W2b) by %.3g (max |ΔW| %.3g)", l.Name, worst, scale)
				}
				if rk := hadamardRank(got, l.Out, l.In); rk != r*r {
					t.Errorf("%s: rank(ΔW) = %d, want r² = %d", l.Name, rk, r*r)
				}
			}
		})
	}
}

// TestLoHaInit: HF's init draws W1a, W1b, W2a Kaiming-uniform with fan-in
// = second dimension and zeros W2b (ΔW = 0); init_weights=false draws W2b.
func TestLoHaInit(t *testing.T) {
	for _, init := range []bool{true, false} {
		l := nn.NewLinear("fc", 48, 40, true, nn.NewRNG(1, "init"))
		if _, err := Attach("loha", []*nn.Linear{l}, map[string]any{"rank": 4, "init_weights": init}, nn.NewRNG(1, "method")); err != nil {
			t.Fatal(err)
		}
		a := l.Adapter.(*LoHa)
		for _, c := range []struct {
			t     *nn.Tensor
			fanIn int
		}{{a.W1A, 4}, {a.W1B, 48}, {a.W2A, 4}, {a.W2B, 48}} {
			bound := 1 / math.Sqrt(float64(c.fanIn))
			hi := maxAbs(c.t.Data)
			if c.t == a.W2B && init {
				if hi != 0 {
					t.Errorf("init_weights=true: %s not zero", c.t.Name)
				}
				continue
			}
			if hi >= bound || hi < 0.5*bound {
				t.Errorf("init_weights=%v: max |%s| = %.4g, want U(±%.4g)", init, c.t.Name, hi, bound)
			}
		}
	}
}

// lycorisDropoutCase attaches method with opts (and a random init) to one
// 40×48 layer and returns it with a batch, the base output and the
// evaluation-mode output.
func lycorisDropoutCase(t *testing.T, method string, opts map[string]any) (l *nn.Linear, att Attachment, x *nn.Tensor, base, full []float32) {
	t.Helper()
	l = nn.NewLinear("fc", 48, 40, true, nn.NewRNG(1, "init"))
	x = nn.New(8, 48)
	nn.NewRNG(1, "x").FillNormal(x, 0, 1)
	fwd := func(g *nn.Graph) *nn.Tensor { return l.Forward(g, x) }
	base = eval(fwd)
	att, err := Attach(method, []*nn.Linear{l}, opts, nn.NewRNG(1, "method"))
	if err != nil {
		t.Fatal(err)
	}
	full = eval(fwd)
	if relDiff(full, base) < 1e-3 {
		t.Fatal("the adapter does not change the output; use a random init")
	}
	return l, att, x, base, full
}

// checkRankDropout: with rank_dropout, every training forward pass adds
// D·ΔW with D diagonal, each entry 0 or one common c (out/kept with
// rescaling, else 1): column i of y − y_base is 0 or c times that of the
// evaluation output's; both occur; evaluation is unchanged after.
func checkRankDropout(t *testing.T, method string, opts map[string]any, rescale bool) {
	l, att, x, base, full := lycorisDropoutCase(t, method, opts)
	att.SetTraining(nn.NewRNG(5, "dropout"))
	n, out := x.Rows(), l.Out
	var dropped, kept int
	for range 10 {
		y := eval(func(g *nn.Graph) *nn.Tensor { return l.Forward(g, x) })
		var cs []float64
		k := 0
		for i := range out {
			var num, den, zero float64
			for s := range n {
				d := float64(y[s*out+i] - base[s*out+i])
				f := float64(full[s*out+i] - base[s*out+i])
				num += d * f
				den += f * f
				zero = max(zero, math.Abs(d))
			}
			if zero < 1e-6 {
				dropped++
				continue
			}
			kept++
			k++
			c := num / den
			cs = append(cs, c)
			for s := range n {
				d := float64(y[s*out+i] - base[s*out+i])
				f := float64(full[s*out+i] - base[s*out+i])
				if math.Abs(d-c*f) > 1e-4*max(1, math.Abs(d)) {
					t.Fatalf("row %d of ΔW is not a multiple of the evaluation ΔW's", i)
				}
			}
		}
		want := 1.0
		if rescale {
			want = float64(out) / float64(k)
		}
		for _, c := range cs {
			if math.Abs(c-want) > 1e-4*want {
				t.Fatalf("kept rows scaled by %.6g, want %.6g (rescale %v, %d of %d kept)", c, want, rescale, k, out)
			}
		}
	}
	if dropped == 0 || kept == 0 {
		t.Errorf("rank dropout dropped %d rows and kept %d: want both", dropped, kept)
	}
	att.SetTraining(nil)
	if d := relDiff(eval(func(g *nn.Graph) *nn.Tensor { return l.Forward(g, x) }), full); d != 0 {
		t.Errorf("evaluation after training mode moved by %g", d)
	}
}

// checkModuleDropout: with module_dropout, each training forward pass is
// either the base layer or the whole adapter, and both occur.
func checkModuleDropout(t *testing.T, method string, opts map[string]any) {
	l, att, x, base, full := lycorisDropoutCase(t, method, opts)
	att.SetTraining(nn.NewRNG(5, "dropout"))
	var skipped, applied int
	for range 20 {
		y := eval(func(g *nn.Graph) *nn.Tensor { return l.Forward(g, x) })
		switch {
		case relDiff(y, base) == 0:
			skipped++
		case relDiff(y, full) < 1e-6:
			applied++
		default:
			t.Fatal("a training forward pass is neither the base layer nor the adapter")
		}
	}
	if skipped == 0 || applied == 0 {
		t.Errorf("module dropout skipped %d and applied %d of 20 passes: want both", skipped, applied)
	}
}

func TestLoHaDropout(t *testing.T) {
	t.Run("rank_dropout", func(t *testing.T) {
		checkRankDropout(t, "loha", map[string]any{"rank": 4, "init_weights": false, "rank_dropout": 0.3}, true)
	})
	t.Run("module_dropout", func(t *testing.T) {
		checkModuleDropout(t, "loha", map[string]any{"rank": 4, "init_weights": false, "module_dropout": 0.5})
	})
}
