package methods

import (
	"math"
	"slices"
	"strings"
	"testing"

	"peftbench/nn"
)

// TestC3ABlockCirculant: ΔW (merged minus W0) is block circulant — in
// block (i, j), row 0 is K[i, j, :]/In and each next row is the one above
// shifted cyclically one place right — and the adapter's forward is
// x·W0ᵀ + b + x·ΔWᵀ, with the exact gradients of that map for x and K
// (∂x = G·ΔW, ∂K[i,j,s] = Σ_r Σ_u G[r, i·b+u]·x[r, j·b+(u+s) mod b]/In),
// on odd and even block sizes, b = 1 and one block.
func TestC3ABlockCirculant(t *testing.T) {
	for _, c := range []struct{ out, in, b int }{
		{8, 12, 4},
		{6, 9, 3},
		{10, 15, 5},
		{12, 8, 1},
		{8, 8, 8},
		{7, 7, 7},
		{48, 24, 8},
	} {
		rng := nn.NewRNG(uint64(c.b), "c3a")
		l := nn.NewLinear("fc", c.in, c.out, true, rng)
		a := newC3A(l, c.b)
		rng.FillNormal(a.Kernel, 0, 1)
		merged := a.Merged(l)
		dw := make([]float64, c.out*c.in)
		for i := range dw {
			dw[i] = float64(merged[i] - l.Weight.Data[i])
		}
		nb, b := c.in/c.b, c.b
		near := func(got, want float64) bool { return math.Abs(got-want) <= 1e-5*max(1, math.Abs(want)) }
		bad := 0
		for i := range c.out / b {
			for j := range nb {
				k := a.Kernel.Data[(i*nb+j)*b : (i*nb+j+1)*b]
				for u := range b {
					for v := range b {
						got := dw[(i*b+u)*c.in+j*b+v]
						want := float64(k[v]) / float64(c.in) // row 0
						if u > 0 {
							want = dw[(i*b+u-1)*c.in+j*b+(v-1+b)%b] // shifted right
						}
						if !near(got, want) && bad < 5 {
							bad++
							t.Errorf("%d×%d b=%d: ΔW block (%d,%d) [%d,%d] = %.6g, want %.6g", c.out, c.in, c.b, i, j, u, v, got, want)
						}
					}
				}
			}
		}

		// forward = x·W0ᵀ + b + x·ΔWᵀ, and exact gradients.
		const n = 5
		x := nn.Param("x", n, c.in)
		rng.FillNormal(x, 0, 1)
		G := nn.New(n, c.out)
		rng.FillNormal(G, 0, 1)
		l.Adapter = a
		g := nn.NewGraph()
		y := l.Forward(g, x)
		g.Backward(g.Sum(g.Mul(y, G)))
		for r := range n {
			for o := range c.out {
				want := float64(l.Bias.Data[o])
				for v := range c.in {
					want += float64(x.Data[r*c.in+v]) * float64(merged[o*c.in+v])
				}
				if got := float64(y.Data[r*c.out+o]); !near(got, want) {
					t.Fatalf("%d×%d b=%d: y[%d,%d] = %.6g, x·(W0+ΔW)ᵀ + b gives %.6g", c.out, c.in, c.b, r, o, got, want)
				}
			}
			for v := range c.in {
				want := 0.0
				for o := range c.out {
					want += float64(G.Data[r*c.out+o]) * float64(merged[o*c.in+v])
				}
				if got := float64(x.Grad[r*c.in+v]); !near(got, want) {
					t.Fatalf("%d×%d b=%d: ∂x[%d,%d] = %.6g, want %.6g", c.out, c.in, c.b, r, v, got, want)
				}
			}
		}
		for i := range c.out / b {
			for j := range nb {
				for s := range b {
					want := 0.0
					for r := range n {
						for u := range b {
							want += float64(G.Data[r*c.out+i*b+u]) * float64(x.Data[r*c.in+j*b+(u+s)%b])
						}
					}
					want /= float64(c.in)
					if got := float64(a.Kernel.Grad[(i*nb+j)*b+s]); !near(got, want) {
						t.Fatalf("%d×%d b=%d: ∂K[%d,%d,%d] = %.6g, want %.6g", c.out, c.in, c.b, i, j, s, got, want)
					}
				}
			}
		}
	}
}

// TestC3ABlockSize: the default block size is the gcd of every targeted
// layer's sizes, and a size that does not divide a layer is refused with
// the layer named.
func TestC3ABlockSize(t *testing.T) {
	layers := []LayerShape{{Name: "fc1", Out: 128, In: 784}, {Name: "fc2", Out: 128, In: 128}}
	o, err := ResolveOptions("c3a", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := c3aBlock(o, layers); b != 16 {
		t.Errorf("default block size %d, want gcd 16", b)
	}
	if err := CheckLayers("c3a", o, layers); err != nil {
		t.Errorf("default refused: %v", err)
	}
	o, _ = ResolveOptions("c3a", 32, nil)
	err = CheckLayers("c3a", o, layers)
	if err == nil || !containsAll(err.Error(), "block_size", "fc1", "128×784") {
		t.Errorf("block_size 32 on a 784-wide layer: %v", err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func init() {
	addTorchCase(torchSpec{name: "c3a", method: "c3a",
		opts: map[string]any{"block_size": 8},
		lr:   1e-1, clip: 0.005,
		export: func(l *nn.Linear) map[string][]float32 {
			return map[string][]float32{"kernel": slices.Clone(l.Adapter.(*C3A).Kernel.Data)}
		}})
}

// TestC3APathsAgree: the FFT path (HF's algorithm) and the dense path
// (x·(W0 + ΔW)ᵀ with ΔW built from K) give the same output and gradients
// for x and K, on odd and even block sizes.
func TestC3APathsAgree(t *testing.T) {
	for _, c := range []struct{ out, in, b int }{{8, 12, 4}, {6, 9, 3}, {12, 8, 1}, {48, 24, 8}, {32, 64, 16}} {
		rng := nn.NewRNG(uint64(c.b), "c3a-paths")
		l := nn.NewLinear("fc", c.in, c.out, true, rng)
		a := newC3A(l, c.b)
		rng.FillNormal(a.Kernel, 0, 1)
		l.Adapter = a
		const n = 7
		x := nn.Param("x", n, c.in)
		rng.FillNormal(x, 0, 1)
		G := nn.New(n, c.out)
		rng.FillNormal(G, 0, 1)
		var ys, xg, kg [2][]float32
		for p, path := range []int{1, 2} {
			a.path = path
			x.ZeroGrad()
			a.Kernel.ZeroGrad()
			g := nn.NewGraph()
			y := l.Forward(g, x)
			g.Backward(g.Sum(g.Mul(y, G)))
			ys[p], xg[p], kg[p] = slices.Clone(y.Data), slices.Clone(x.Grad), slices.Clone(a.Kernel.Grad)
		}
		for _, chk := range []struct {
			what string
			v    [2][]float32
		}{{"y", ys}, {"∂x", xg}, {"∂K", kg}} {
			if d := relDiff(chk.v[0], chk.v[1]); d > 1e-5 {
				t.Errorf("%d×%d b=%d: %s differs between the FFT and dense paths by %.3g", c.out, c.in, c.b, chk.what, d)
			}
		}
	}
}
