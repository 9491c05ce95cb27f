package methods

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

// smallMLPTrained attaches method to the hidden layers of an MLP of the
// given sizes (the head stays frozen) and trains it steps AdamW steps on a
// fixed random batch.
func smallMLPTrained(t *testing.T, sizes []int, method string, opts map[string]any, steps int, lr float32) (*nn.MLP, Attachment) {
	t.Helper()
	mlp := nn.NewMLP(sizes, nn.NewRNG(5, "init"))
	data := nn.NewRNG(5, "data")
	x := nn.New(16, sizes[0])
	data.FillNormal(x, 0, 1)
	labels := make([]int, 16)
	for i := range labels {
		labels[i] = data.Intn(sizes[len(sizes)-1])
	}
	att, err := Attach(method, mlp.Layers[:len(mlp.Layers)-1], opts, nn.NewRNG(5, "method"))
	if err != nil {
		t.Fatal(err)
	}
	tr := newTrainer(t, att, func(g *nn.Graph) *nn.Tensor { return g.CrossEntropy(mlp.Forward(g, x), labels) })
	for s := range steps {
		tr.step(s, steps, lr)
	}
	return mlp, att
}

// deltaFromForward returns ΔW (Out×In, row-major) of l's adapter as its
// forward pass computes it: the rows of x = I give W'ᵀ + b.
func deltaFromForward(l *nn.Linear) []float64 {
	g := &nn.Graph{NoGrad: true}
	x := nn.New(l.In, l.In)
	for i := range l.In {
		x.Data[i*l.In+i] = 1
	}
	y := l.Forward(g, x)
	d := make([]float64, l.Out*l.In)
	for o := range l.Out {
		for i := range l.In {
			d[o*l.In+i] = float64(y.Data[i*l.Out+o]) - float64(l.Bias.Data[o]) - float64(l.Weight.Data[o*l.In+i])
		}
	}
	return d
}

// TestGraLoRABlockStructure checks GraLoRA's defining property on ΔW as
// the forward pass computes it, after training: block (j, n) of the k×k
// grid has rank ≤ r/k, and perturbing that block's own factors (group n of
// B_j, group j of A_n) changes block (j, n) and no other.
func TestGraLoRABlockStructure(t *testing.T) {
	for _, c := range []struct {
		k, r int
	}{{1, 4}, {2, 4}, {2, 8}, {4, 8}, {4, 16}} {
		mlp, _ := smallMLPTrained(t, []int{24, 48, 40, 6}, "gralora", map[string]any{"rank": c.r, "gralora_k": c.k, "alpha": 2 * c.r}, 4, 2e-2)
		for _, l := range mlp.Layers[:2] {
			m := l.Adapter.(*GraLoRA)
			k, rb := c.k, c.r/c.k
			outb, inb := l.Out/k, l.In/k
			d := deltaFromForward(l)
			block := func(d []float64, j, n int) *mat.Dense {
				b := mat.NewDense(outb, inb, nil)
				for o := range outb {
					for i := range inb {
						b.Set(o, i, d[(j*outb+o)*l.In+n*inb+i])
					}
				}
				return b
			}
			big := 0.0
			for _, v := range d {
				big = max(big, math.Abs(v))
			}
			if big < 1e-4 {
				t.Fatalf("k=%d r=%d %s: ΔW still ~0 after training (max %g)", k, c.r, l.Name, big)
			}
			for j := range k {
				for n := range k {
					var f mat.SVD
					if !f.Factorize(block(d, j, n), mat.SVDNone) {
						t.Fatal("SVD failed")
					}
					s := f.Values(nil)
					if len(s) > rb && s[rb] > 1e-5*big*float64(max(outb, inb)) {
						t.Errorf("k=%d r=%d %s: block (%d,%d) has singular value %d = %.3g (σ₁ %.3g): rank > r/k = %d", k, c.r, l.Name, j, n, rb+1, s[rb], s[0], rb)
					}
				}
			}
			// Perturb block (j, n)'s own factors, A_n's group j and B_j's
			// group n, one at a time: each moves block (j, n) and no other.
			saveA, saveB := slices.Clone(m.A.Data), slices.Clone(m.B.Data)
			for j := range k {
				for n := range k {
					for _, side := range []string{"A", "B"} {
						for q := range rb {
							if side == "B" {
								for o := range outb { // gralora_B[j, n·rb+q, o]
									m.B.Data[(j*c.r+n*rb+q)*outb+o] += 0.5
								}
							} else {
								for i := range inb { // gralora_A[n, i, j·rb+q]
									m.A.Data[(n*inb+i)*c.r+j*rb+q] += 0.5
								}
							}
						}
						d2 := deltaFromForward(l)
						copy(m.A.Data, saveA)
						copy(m.B.Data, saveB)
						for jj := range k {
							for nn := range k {
								diff := mat.NewDense(outb, inb, nil)
								diff.Sub(block(d2, jj, nn), block(d, jj, nn))
								moved := mat.Norm(diff, math.Inf(1))
								if jj == j && nn == n && moved < 1e-3 {
									t.Errorf("k=%d r=%d %s: block (%d,%d) did not move with its own %s factor", k, c.r, l.Name, j, n, side)
								}
								if (jj != j || nn != n) && moved > 1e-6 {
									t.Errorf("k=%d r=%d %s: block (%d,%d) moved by %.3g when block (%d,%d)'s %s factor changed", k, c.r, l.Name, jj, nn, moved, j, n, side)
								}
							}
						}
					}
				}
			}
		}
	}
}

func graloraExport(l *nn.Linear) map[string][]float32 {
	m := l.Adapter.(*GraLoRA)
	e := map[string][]float32{"gralora_A": slices.Clone(m.A.Data)}
	if m.AG != nil {
		e["gralora_A_general"] = slices.Clone(m.AG.Data)
	}
	return e
}

func init() {
	addTorchCase(torchSpec{name: "gralora", method: "gralora",
		opts: map[string]any{"rank": 8, "alpha": 16}, lr: 1e-2, clip: 0.05, export: graloraExport})
	addTorchCase(torchSpec{name: "gralora-hybrid", method: "gralora",
		opts: map[string]any{"rank": 8, "alpha": 16, "gralora_k": 4, "hybrid_r": 2}, lr: 1e-2, clip: 0.05, export: graloraExport})
}
