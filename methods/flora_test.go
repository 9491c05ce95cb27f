package methods

import (
	"math"
	"testing"

	"peftbench/kernels"
	"peftbench/nn"
)

func init() {
	// κ = 5: resampled (with the moment transferred) at steps 5, 10, 15.
	addTorchCase(torchSpec{name: "flora", method: "flora",
		opts: map[string]any{"rank": 4, "kappa": 5, "projection_seed": 3}, lr: 1e-2, clip: 0.05})
}

// TestFloraCompressedMomentum: on the reference MLP Flora keeps Adam's
// first moment as r×784 for fc1 (256×784, compressed on the left) and
// 256×r for fc2 (256×256, on the right) beside the full second moment,
// below AdamW's state on the same layers (measured) and on the Meter; and
// the compressed moment is, step by step, the one recomputed here in
// float64 from the clipped gradients G (of u = G/(√v̂ + ε), v Adam's
// second moment) with the projection of seed
// projection_seed + 1 + i + k·L resampled — and the moment carried over —
// exactly at the weight's steps t = κ, 2κ, … (1-based; 0-based steps
// κ−1, 2κ−1, …).
func TestFloraCompressedMomentum(t *testing.T) {
	const r, kappa, seed, steps, lr = 4, 3, 5, 8, 1e-3
	m := refModels(1)[0]
	att := attachRef(t, m, "flora", map[string]any{"rank": r, "kappa": kappa, "projection_seed": seed})
	tr := newTrainer(t, att, m.loss)
	var meter nn.Meter
	tr.opt.Meter = &meter
	po := projOf(t, tr)
	L := len(m.targets)
	ref := make([][]float64, L) // the compressed moments, recomputed
	vs := make([][]float64, L)  // the second moments
	proj := func(i, k, d int) []float64 {
		a := floraGaussian(seed+1+uint64(i)+uint64(k*L), r*d, r)
		out := make([]float64, len(a))
		for j, v := range a {
			out[j] = float64(v)
		}
		return out
	}
	var resampled []int
	for s := range steps {
		tr.step(s, steps, lr)
		tt := s + 1
		for i, l := range m.targets {
			mm, n := l.Out, l.In
			left := mm < n
			d := n
			if left {
				d = mm
			}
			k := s / kappa
			a := proj(i, k, d)
			c := ref[i]
			if c == nil {
				c = make([]float64, r*max(mm, n)) // r×n (left) or m×r (right)
			}
			if tt%kappa == 0 {
				a2 := proj(i, k+1, d)
				c = floraDown(a2, floraUp(a, c, mm, n, r, left), mm, n, r, left)
				a = a2
				if i == 0 {
					resampled = append(resampled, s)
				}
			}
			// u = G/(√v̂ + ε), v Adam's second moment of the clipped G.
			if vs[i] == nil {
				vs[i] = make([]float64, mm*n)
			}
			g := make([]float64, len(l.Weight.Grad))
			bc2 := 1 - math.Pow(0.999, float64(tt))
			for j, gj := range l.Weight.Grad {
				vs[i][j] = 0.999*vs[i][j] + 0.001*float64(gj)*float64(gj)
				g[j] = float64(gj) / (math.Sqrt(vs[i][j]/bc2) + 1e-8)
			}
			dg := floraDown(a, g, mm, n, r, left)
			for j := range c {
				c[j] = 0.9*c[j] + 0.1*dg[j]
			}
			ref[i] = c
			st := po.states[l.Weight].(*floraState)
			if len(st.c) != len(c) || len(st.v) != mm*n {
				t.Fatalf("%s (%d×%d): |C| = %d, |v| = %d; want %d, %d", l.Name, mm, n, len(st.c), len(st.v), len(c), mm*n)
			}
			var worst, scale float64
			for j := range c {
				worst = max(worst, math.Abs(float64(st.c[j])-c[j]))
				scale = max(scale, math.Abs(c[j]))
			}
			if worst > 1e-4*scale {
				t.Errorf("%s step %d: compressed moment off the recomputed one by %.3g (max %.3g)", l.Name, s, worst, scale)
			}
		}
	}
	if want := []int{2, 5}; !equalInts(resampled, want) {
		t.Errorf("resampled at steps %v, want %v", resampled, want)
	}
	var want int64
	for _, l := range m.targets {
		want += 4*int64(r*max(l.Out, l.In)+l.Out*l.In) + 8*int64(l.Out)
	}
	got := po.StateBytes()
	if adam := adamWStateBytes(t, 2); got != want || !(got < adam) {
		t.Errorf("StateBytes = %d, want %d, below AdamW's %d", got, want, adam)
	} else {
		t.Logf("optimizer state: Flora r=%d %d bytes, AdamW %d bytes (%.1f%%)", r, got, adam, 100*float64(got)/float64(adam))
	}
	if meter.Current() != got {
		t.Errorf("Meter holds %d bytes, StateBytes %d", meter.Current(), got)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// floraDown is A·X (left: A r×m) or X·A (right: A n×r) in float64.
func floraDown(a, x []float64, m, n, r int, left bool) []float64 {
	if left {
		c := make([]float64, r*n)
		kernels.Dgemm(false, false, r, n, m, 1, a, m, x, n, 0, c, n)
		return c
	}
	c := make([]float64, m*r)
	kernels.Dgemm(false, false, m, r, n, 1, x, n, a, r, 0, c, r)
	return c
}

// floraUp is Aᵀ·C (left) or C·Aᵀ (right) in float64.
func floraUp(a, c []float64, m, n, r int, left bool) []float64 {
	x := make([]float64, m*n)
	if left {
		kernels.Dgemm(true, false, m, n, r, 1, a, m, c, n, 0, x, n)
	} else {
		kernels.Dgemm(false, true, m, n, r, 1, c, r, a, r, 0, x, n)
	}
	return x
}

// TestFloraUncompressed: a weight with r ≥ min(out, in) is not compressed
// and trains exactly as under the trial's AdamW.
func TestFloraUncompressed(t *testing.T) {
	run := func(method string, opts map[string]any) []float32 {
		m := refModels(1)[0]
		train(t, m, attachRef(t, m, method, opts), 3, 1e-3)
		return m.targets[1].Weight.Data // 256×256
	}
	full := run("full", nil)
	flora := run("flora", map[string]any{"rank": 256})
	if d := relDiff(flora, full); d != 0 {
		t.Errorf("flora with r = 256 on 256×256 differs from AdamW by %.3g", d)
	}
}
