package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

// TestFourierFTPositionsAreTorchs: the coefficients sit where HF PEFT puts
// them, torch.randperm(out·in, generator=torch.Generator().manual_seed(
// seed))[:n_f] split into (i // in, i % in); the expected values come from
// torch 1.13.
func TestFourierFTPositionsAreTorchs(t *testing.T) {
	for _, c := range []struct {
		out, in, seed int
		rows, cols    []int
	}{
		{48, 24, 777, []int{30, 15, 30, 31, 19, 24, 46, 22, 43, 36, 0, 6}, []int{23, 17, 3, 2, 11, 10, 15, 21, 15, 16, 23, 21}},
		{40, 48, 777, []int{39, 7, 22, 28, 33, 35, 36, 22, 35, 39, 5, 30}, []int{23, 21, 47, 14, 3, 22, 9, 18, 47, 22, 21, 38}},
		{7, 5, 3, []int{5, 3, 1, 1, 1, 1, 0, 6, 6, 5, 4, 2, 3, 0, 4, 2, 2, 4, 4, 0, 0, 6, 3, 0, 6, 3, 2, 5, 5, 4, 6, 3, 2, 5, 1},
			[]int{1, 2, 4, 1, 3, 0, 2, 2, 3, 3, 4, 4, 0, 3, 0, 0, 1, 3, 1, 1, 0, 4, 1, 4, 1, 4, 2, 4, 0, 2, 0, 3, 3, 2, 2}},
		{256, 784, 777, []int{237, 198, 89, 129, 147, 222, 20, 138}, []int{663, 729, 57, 750, 231, 449, 435, 296}},
	} {
		l := nn.NewLinear("fc", c.in, c.out, true, nn.NewRNG(1, "init"))
		f := newFourierFT(l, len(c.rows), 150, uint64(c.seed))
		if !slices.Equal(f.Rows, c.rows) || !slices.Equal(f.Cols, c.cols) {
			t.Errorf("%d×%d seed %d: positions rows %v cols %v, torch rows %v cols %v", c.out, c.in, c.seed, f.Rows, f.Cols, c.rows, c.cols)
		}
	}
}

// directFourierDelta is ΔW[u,v] = α/(m·n)·Σ_k c_k·cos(2π(p_k·u/m + q_k·v/n)),
// the real part of the inverse 2-D DFT of the sparse spectrum, summed
// directly in float64.
func directFourierDelta(f *FourierFT) []float64 {
	m, n := f.out, f.in
	d := make([]float64, m*n)
	s := f.Scaling / float64(m*n)
	for u := range m {
		for v := range n {
			var acc float64
			for k, c := range f.Spectrum.Data {
				th := 2 * math.Pi * (float64(f.Rows[k]*u%m)/float64(m) + float64(f.Cols[k]*v%n)/float64(n))
				acc += float64(c) * math.Cos(th)
			}
			d[u*n+v] = s * acc
		}
	}
	return d
}

// TestFourierFTDeltaIsInverseDFT2: ΔW (the merged weight minus W0) equals
// the directly summed inverse 2-D DFT of the sparse spectrum, on even and
// odd shapes and up to a full spectrum (every position, both halves, the
// DC and Nyquist rows and columns); and the backward pass gives the exact
// gradient, ∂L/∂c_k = α/(m·n)·Σ G[u,v]·cos(2π(p_k·u/m + q_k·v/n)).
func TestFourierFTDeltaIsInverseDFT2(t *testing.T) {
	for _, c := range []struct{ out, in, nf, seed int }{
		{6, 4, 24, 1},
		{7, 5, 35, 3},
		{5, 8, 13, 2},
		{1, 9, 9, 4},
		{10, 1, 10, 5},
		{48, 24, 200, 777},
		{40, 48, 1000, 777},
	} {
		rng := nn.NewRNG(uint64(c.seed), "fourierft")
		l := nn.NewLinear("fc", c.in, c.out, true, rng)
		f := newFourierFT(l, c.nf, 150, uint64(c.seed))
		rng.FillNormal(f.Spectrum, 0, 1)
		want := directFourierDelta(f)
		merged := f.Merged(l)
		var worst, norm float64
		for i, w := range want {
			worst = max(worst, math.Abs(float64(merged[i]-l.Weight.Data[i])-w))
			norm = max(norm, math.Abs(w))
		}
		if worst > 1e-5*max(norm, 1e-3) {
			t.Errorf("%d×%d n_f=%d: ΔW differs from the direct inverse DFT by %.3g (max |ΔW| %.3g)", c.out, c.in, c.nf, worst, norm)
		}

		// Gradient: loss = Σ G ⊙ ΔW for a fixed random G.
		G := nn.New(c.out, c.in)
		rng.FillNormal(G, 0, 1)
		g := nn.NewGraph()
		f.Spectrum.ZeroGrad()
		d := g.Custom(f.fn, []int{c.out, c.in}, f.Spectrum)
		g.Backward(g.Sum(g.Mul(d, G)))
		if worst, norm := maxDiff(f.Spectrum.Grad, directFourierGrad(f, G.Data)); worst > 1e-5*max(norm, 1e-3) {
			t.Errorf("%d×%d n_f=%d: gradient differs from the direct sum by %.3g (max %.3g)", c.out, c.in, c.nf, worst, norm)
		}

		// The layer's forward, by either path, is x·(W0 + ΔW)ᵀ + b, and
		// its gradients are ∂x = Gy·(W0 + ΔW) and ∂c as above with
		// G = Gyᵀ·x.
		const rows = 3
		x := nn.Param("x", rows, c.in)
		rng.FillNormal(x, 0, 1)
		gy := nn.New(rows, c.out)
		rng.FillNormal(gy, 0, 1)
		wantY := make([]float32, rows*c.out)
		wantX := make([]float32, rows*c.in)
		gw := make([]float32, c.out*c.in)
		for r := range rows {
			for u := range c.out {
				acc := float64(l.Bias.Data[u])
				for v := range c.in {
					acc += float64(x.Data[r*c.in+v]) * (float64(l.Weight.Data[u*c.in+v]) + want[u*c.in+v])
					wantX[r*c.in+v] += gy.Data[r*c.out+u] * float32(float64(l.Weight.Data[u*c.in+v])+want[u*c.in+v])
					gw[u*c.in+v] += gy.Data[r*c.out+u] * x.Data[r*c.in+v]
				}
				wantY[r*c.out+u] = float32(acc)
			}
		}
		wantC := directFourierGrad(f, gw)
		for _, path := range []int{1, 2} {
			f.path = path
			l.Adapter = f
			g := nn.NewGraph()
			x.ZeroGrad()
			f.Spectrum.ZeroGrad()
			y := l.Forward(g, x)
			g.Backward(g.Sum(g.Mul(y, gy)))
			for _, chk := range []struct {
				what      string
				got, want []float32
			}{{"y", y.Data, wantY}, {"∂x", x.Grad, wantX}, {"∂c", f.Spectrum.Grad, wantC}} {
				w64 := make([]float64, len(chk.want))
				for i, v := range chk.want {
					w64[i] = float64(v)
				}
				if worst, norm := maxDiff(chk.got, w64); worst > 1e-4*max(norm, 1e-2) {
					t.Errorf("%d×%d n_f=%d path %d: %s differs from the direct computation by %.3g (max %.3g)", c.out, c.in, c.nf, path, chk.what, worst, norm)
				}
			}
		}
		f.path = 0
	}
}

// directFourierGrad is ∂/∂c_k of Σ G ⊙ ΔW, α/(m·n)·Σ G[u,v]·cos(2π(p_k·u/m + q_k·v/n)).
func directFourierGrad(f *FourierFT, G []float32) []float32 {
	m, n := f.out, f.in
	s := f.Scaling / float64(m*n)
	out := make([]float32, len(f.Rows))
	for k := range f.Rows {
		var acc float64
		for u := range m {
			for v := range n {
				th := 2 * math.Pi * (float64(f.Rows[k]*u%m)/float64(m) + float64(f.Cols[k]*v%n)/float64(n))
				acc += float64(G[u*n+v]) * math.Cos(th)
			}
		}
		out[k] = float32(s * acc)
	}
	return out
}

// maxDiff returns max|got − want| and max|want|.
func maxDiff[T float32 | float64](got []float32, want []T) (worst, norm float64) {
	for i, w := range want {
		worst = max(worst, math.Abs(float64(got[i])-float64(w)))
		norm = max(norm, math.Abs(float64(w)))
	}
	return worst, norm
}

func init() {
	addTorchCase(torchSpec{name: "fourierft", method: "fourierft",
		opts: map[string]any{"n_frequency": 200, "scaling": 150.0},
		lr:   5e-2, clip: 0.05,
		export: func(l *nn.Linear) map[string][]float32 {
			return map[string][]float32{"spectrum": slices.Clone(l.Adapter.(*FourierFT).Spectrum.Data)}
		}})
}
