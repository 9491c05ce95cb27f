package methods

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"testing"

	"peftbench/nn"
)

func init() {
	oftInit := func(l *nn.Linear) map[string][]float32 {
		return map[string][]float32{"oft_R": slices.Clone(l.Adapter.(*OFT).R.Data)}
	}
	// Layers 48×24 and 40×48: blocks of 8 and 4 divide both.
	addTorchCase(torchSpec{name: "oft", method: "oft", opts: map[string]any{"oft_block_size": 8}, lr: 5e-2, clip: 0.05})
	addTorchCase(torchSpec{name: "oft-exact-coft", method: "oft",
		opts: map[string]any{"oft_block_size": 4, "use_cayley_neumann": false, "coft": true, "eps": 0.3}, lr: 5e-2, clip: 0.05})
	addTorchCase(torchSpec{name: "oft-share-random", method: "oft",
		opts: map[string]any{"oft_block_size": 8, "block_share": true, "init_weights": false, "num_cayley_neumann_terms": 4},
		lr:   2e-2, clip: 0.05, export: oftInit})
}

// smallModel is the cross-check's MLP (24-48-40-6, the first two layers
// targeted) with a fixed batch.
func smallModel(seed uint64) refModel {
	mlp := nn.NewMLP([]int{24, 48, 40, 6}, nn.NewRNG(seed, "init"))
	data := nn.NewRNG(seed, "data")
	x := nn.New(32, 24)
	data.FillNormal(x, 0, 1)
	labels := make([]int, 32)
	for i := range labels {
		labels[i] = data.Intn(6)
	}
	out := func(g *nn.Graph) *nn.Tensor { return mlp.Forward(g, x) }
	return refModel{name: "small", model: mlp, targets: mlp.Layers[:2], out: out, loss: func(g *nn.Graph) *nn.Tensor { return g.CrossEntropy(out(g), labels) }}
}

// blocks64 returns a rotation op's blocks (count×b×b) in float64.
func blocks64(op *cayleyOp, p *nn.Tensor) [][]float64 {
	g := &nn.Graph{NoGrad: true}
	r := op.apply(g, p)
	bb := op.b * op.b
	var out [][]float64
	for j := range op.blocks {
		blk := make([]float64, bb)
		for i := range blk {
			blk[i] = float64(r.Data[j*bb+i])
		}
		out = append(out, blk)
	}
	return out
}

// orthDefect is max |(RᵀR − I)_ij|.
func orthDefect(r []float64, b int) float64 {
	var d float64
	for i := range b {
		for j := range b {
			var s float64
			for k := range b {
				s += r[k*b+i] * r[k*b+j]
			}
			if i == j {
				s--
			}
			d = max(d, math.Abs(s))
		}
	}
	return d
}

// oftNeumannBound is the documented accuracy of HF's truncated series.
// With q = ‖Q‖₂ < 1 (bounded here by ‖Q‖_F) the exact target is
// R* = (I + Q)(I − Q)⁻¹ = I + 2Σ_{k≥1} Q^k, orthogonal; the series
// R = Σ c_k Q^k (neumannCoeffs) differs from it by
// ‖R − R*‖₂ ≤ δ = Σ_{k≤K} |2 − c_k|·q^k + 2q^{K+1}/(1 − q) (k ≥ 1), so
// ‖RᵀR − I‖₂ = ‖RᵀR − R*ᵀR*‖₂ ≤ δ(2 + δ). Both bound every entry.
func oftNeumannBound(terms int, q float64) (delta, defect float64) {
	cs := neumannCoeffs(terms)
	for k := 1; k < len(cs); k++ {
		delta += math.Abs(2-cs[k]) * math.Pow(q, float64(k))
	}
	delta += 2 * math.Pow(q, float64(len(cs))) / (1 - q)
	return delta, delta * (2 + delta)
}

// TestOFTDefiningProperties: identity at step 0; after training, exact
// Cayley blocks are orthogonal to 1e-5 and the Cayley–Neumann blocks stay
// within the documented bound of the exact transform (I + Q)(I − Q)⁻¹ and
// of orthogonality; block_share trains one block that fills every diagonal
// block; the merged weight is W0·Rᵀ for R = blockdiag(R_j) assembled here;
// coft keeps every ‖Q_j‖_F within eps/√blocks.
func TestOFTDefiningProperties(t *testing.T) {
	cases := []struct {
		name string
		opts map[string]any
	}{
		{"exact", map[string]any{"oft_block_size": 8, "use_cayley_neumann": false}},
		{"exact-share", map[string]any{"oft_block_size": 4, "use_cayley_neumann": false, "block_share": true}},
		{"exact-coft", map[string]any{"oft_block_size": 8, "use_cayley_neumann": false, "coft": true, "eps": 0.2}},
		{"neumann5", map[string]any{"oft_block_size": 8}},
		{"neumann3", map[string]any{"oft_block_size": 8, "num_cayley_neumann_terms": 3}},
		{"neumann2-share", map[string]any{"oft_block_size": 8, "num_cayley_neumann_terms": 2, "block_share": true}},
		{"adjusted", map[string]any{"oft_block_size": 7, "use_cayley_neumann": false}}, // 24 → 6, 48 → 6 (tie: lower)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := smallModel(5)
			base := eval(m.out)
			att := attachRef(t, m, "oft", c.opts)
			o, _ := ResolveOptions("oft", 0, c.opts)
			if d := relDiff(eval(m.out), base); d != 0 {
				t.Fatalf("step 0: outputs differ from the base model by %g", d)
			}
			for _, l := range m.targets {
				for j, r := range blocks64(l.Adapter.(*OFT).op, l.Adapter.(*OFT).R) {
					if d := orthDefect(r, l.Adapter.(*OFT).Block); d != 0 {
						t.Fatalf("step 0: %s block %d is not I (defect %g)", l.Name, j, d)
					}
				}
			}
			train(t, m, att, 8, 5e-3)
			eval(m.out) // coft projects before each forward, as HF does
			for _, l := range m.targets {
				a := l.Adapter.(*OFT)
				b := a.Block
				if want := oftBlockSize(l.In, o.Int("oft_block_size")); b != want || l.In%b != 0 {
					t.Fatalf("%s: block %d, want %d dividing %d", l.Name, b, want, l.In)
				}
				if a.Share != (a.R.Shape[0] == 1) || (!a.Share && a.R.Shape[0] != l.In/b) {
					t.Fatalf("%s: oft_R %v with block_share %v", l.Name, a.R.Shape, a.Share)
				}
				blocks := blocks64(a.op, a.R)
				var moved float64
				for j, r := range blocks {
					moved = max(moved, orthDefect(r, b)+math.Abs(r[1]))
					q := qNorm(a, j)
					if a.COFT && q > a.Eps/math.Sqrt(float64(a.R.Shape[0]))*(1+1e-6) {
						t.Errorf("%s block %d: ‖Q‖_F = %g above the coft radius", l.Name, j, q)
					}
					d := orthDefect(r, b)
					if !a.UseSeries {
						if d > 1e-5 {
							t.Errorf("%s block %d: exact Cayley R is off orthogonal by %g", l.Name, j, d)
						}
						continue
					}
					if q >= 0.5 {
						t.Fatalf("%s block %d: ‖Q‖_F = %g, too large for the series bound", l.Name, j, q)
					}
					delta, bound := oftNeumannBound(a.Terms, q)
					if j == 0 {
						t.Logf("%s block 0: q = %.3g, defect %.3g (bound %.3g)", l.Name, q, d, bound)
					}
					if d > bound+1e-6 {
						t.Errorf("%s block %d: series R off orthogonal by %g, bound %g (q = %g)", l.Name, j, d, bound, q)
					}
					// against the exact (I + Q)(I − Q)⁻¹: Cayley of −Q.
					neg := a.R.Clone()
					for i := range neg.Data {
						neg.Data[i] = -neg.Data[i]
					}
					exact := blocks64(newCayleyOp("x", b, a.R.Shape[0], skewUpper, 0), neg)[j]
					var e float64
					for i := range r {
						e = max(e, math.Abs(r[i]-exact[i]))
					}
					if e > delta+1e-6 {
						t.Errorf("%s block %d: series is %g from (I+Q)(I−Q)⁻¹, bound %g", l.Name, j, e, delta)
					}
				}
				if moved < 1e-4 {
					t.Errorf("%s: training did not move R", l.Name)
				}
				// W' = W0·Rᵀ with R = blockdiag(R_j) (R_0 in every block when shared).
				want := make([]float64, l.Out*l.In)
				for o := range l.Out {
					for blk := range l.In / b {
						r := blocks[min(blk, len(blocks)-1)]
						if a.Share {
							r = blocks[0]
						}
						for c := range b {
							var s float64
							for k := range b {
								s += float64(l.Weight.Data[o*l.In+blk*b+k]) * r[c*b+k]
							}
							want[o*l.In+blk*b+c] = s
						}
					}
				}
				got := l.Merged()
				var worst float64
				for i := range got {
					worst = max(worst, math.Abs(float64(got[i])-want[i]))
				}
				if worst > 1e-5 {
					t.Errorf("%s: merged weight is %g from W0·Rᵀ", l.Name, worst)
				}
			}
		})
	}
}

// qNorm is ‖Q_j‖_F of OFT block j.
func qNorm(a *OFT, j int) float64 {
	n := a.R.Shape[1]
	var s float64
	for _, v := range a.R.Data[j*n : (j+1)*n] {
		s += 2 * float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// TestCayleyOpGradient compares cayleyOp's backward with central finite
// differences (float64 loss Σ Wᵢⱼ·Rᵢⱼ of random W) for both skew kinds,
// the exact transform and every series length HF distinguishes.
func TestCayleyOpGradient(t *testing.T) {
	for _, kind := range []skewKind{skewUpper, skewHalf} {
		for _, terms := range []int{0, 1, 2, 3, 4, 5, 7} {
			t.Run(fmt.Sprintf("kind%d/terms%d", kind, terms), func(t *testing.T) {
				const b, blocks = 5, 2
				op := newCayleyOp("test", b, blocks, kind, terms)
				rng := nn.NewRNG(9, "cayley")
				p := nn.Param("p", blocks, op.inputLen())
				rng.FillNormal(p, 0, 0.2)
				w := nn.New(blocks, b, b)
				rng.FillNormal(w, 0, 1)
				loss := func() float64 {
					g := &nn.Graph{NoGrad: true}
					r := op.apply(g, p)
					var s float64
					for i, v := range r.Data {
						s += float64(v) * float64(w.Data[i])
					}
					return s
				}
				g := nn.NewGraph()
				p.ZeroGrad()
				g.Backward(g.Sum(g.Mul(op.apply(g, p), g.Const(w.Data, w.Shape...))))
				for i := range p.Data {
					v := p.Data[i]
					const h = 1e-2
					p.Data[i] = v + h
					up := loss()
					p.Data[i] = v - h
					down := loss()
					p.Data[i] = v
					fd := (up - down) / (2 * h)
					if an := float64(p.Grad[i]); math.Abs(an-fd) > 2e-3*max(1, math.Abs(fd)) {
						t.Errorf("p[%d]: backward %g, finite difference %g", i, an, fd)
					}
				}
			})
		}
	}
}

// TestOFTBlockSizeAdjust follows HF PEFT's adjust_oft_parameters.
func TestOFTBlockSizeAdjust(t *testing.T) {
	for _, c := range []struct{ in, b, want int }{
		{784, 32, 28}, {128, 32, 32}, {24, 7, 6}, {24, 5, 4}, {20, 3, 2}, {64, 100, 64}, {7, 4, 1}, {30, 4, 3}, {36, 5, 4}, {10, 4, 5},
	} {
		if got := oftBlockSize(c.in, c.b); got != c.want {
			t.Errorf("in %d, b %d: %d, want %d", c.in, c.b, got, c.want)
		}
	}
	o, _ := ResolveOptions("oft", 4, nil)
	if err := CheckLayers("oft", o, []LayerShape{{Name: "odd", Out: 3, In: 7}}); err == nil {
		t.Error("block size adjusted to 1 accepted")
	}
}

// TestCayleyOpThreads: the rotations and their gradient are bit-identical
// whether the blocks are computed on one goroutine or several.
func TestCayleyOpThreads(t *testing.T) {
	for _, terms := range []int{0, 4, 5} {
		const b, blocks = 24, 6 // blocks·b³ above cayleyParallelMin
		run := func(procs int) ([]float32, []float32) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			op := newCayleyOp("test", b, blocks, skewUpper, terms)
			rng := nn.NewRNG(3, "threads")
			p := nn.Param("p", blocks, op.inputLen())
			rng.FillNormal(p, 0, 0.1)
			w := nn.New(blocks, b, b)
			rng.FillNormal(w, 0, 1)
			g := nn.NewGraph()
			r := op.apply(g, p)
			g.Backward(g.Sum(g.Mul(r, g.Const(w.Data, w.Shape...))))
			return slices.Clone(r.Data), slices.Clone(p.Grad)
		}
		r1, g1 := run(1)
		r2, g2 := run(4)
		if !slices.Equal(r1, r2) || !slices.Equal(g1, g2) {
			t.Errorf("terms %d: results differ between 1 and 4 goroutines", terms)
		}
	}
}

// TestOFTWeightPath: y = x·(W0·Rᵀ)ᵀ, OFT's forward where it is cheaper
// (oftRotateWeight), equals (x·R)·W0ᵀ in value and in the gradients of x
// and of R's parameters, for large and grouped small blocks, shared or
// not.
func TestOFTWeightPath(t *testing.T) {
	if !oftRotateWeight(128, 10, 32, true) || oftRotateWeight(128, 256, 32, true) || oftRotateWeight(128, 256, 28, false) {
		t.Fatal("oftRotateWeight: want the weight path for the reference head only")
	}
	for _, c := range []struct {
		b, in  int
		shared bool
	}{{16, 48, false}, {4, 40, false}, {8, 48, true}, {3, 45, false}} {
		t.Run(fmt.Sprintf("b%d-in%d-shared%v", c.b, c.in, c.shared), func(t *testing.T) {
			const n, out = 9, 7
			rng := nn.NewRNG(4, "weightpath")
			blocks := c.in / c.b
			if c.shared {
				blocks = 1
			}
			op := newCayleyOp("test", c.b, blocks, skewUpper, 5)
			p := nn.Param("p", blocks, op.inputLen())
			rng.FillNormal(p, 0, 0.2)
			x := nn.Param("x", n, c.in)
			rng.FillNormal(x, 0, 1)
			w := nn.New(out, c.in)
			rng.FillNormal(w, 0, 0.5)
			mix := nn.New(n, out)
			rng.FillNormal(mix, 0, 1)
			run := func(weight bool) (y, gx, gp []float32) {
				p.ZeroGrad()
				x.ZeroGrad()
				g := nn.NewGraph()
				r := op.apply(g, p)
				var o *nn.Tensor
				if weight {
					o = g.MatMul(x, rotateRowsT(g, w, r), false, true)
				} else {
					o = g.MatMul(rotateInput(g, x, r), w, false, true)
				}
				g.Backward(g.Sum(g.Mul(o, g.Const(mix.Data, mix.Shape...))))
				return slices.Clone(o.Data), slices.Clone(x.Grad), slices.Clone(p.Grad)
			}
			y1, gx1, gp1 := run(false)
			y2, gx2, gp2 := run(true)
			for _, d := range []struct {
				name string
				a, b []float32
			}{{"y", y1, y2}, {"dx", gx1, gx2}, {"dp", gp1, gp2}} {
				if rd := relDiff(d.a, d.b); rd > 1e-5 {
					t.Errorf("%s: paths differ by %g", d.name, rd)
				}
			}
		})
	}
}
