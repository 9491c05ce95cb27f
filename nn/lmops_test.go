package nn

import (
	"math"
	"testing"
)

// TestLMOpGradients checks the ops of the Hugging Face LM families (RoPE,
// grouped-query attention, GatherCols, SiLU, erf GELU, RMSNorm/LayerNorm
// with their own ε, the chunked LM cross-entropy) against finite
// differences. A sign error in RoPE's backward, a dK/dV that only one q head
// of a group adds to, or a chunk's gradient written to the wrong rows fails
// here.
func TestLMOpGradients(t *testing.T) {
	r := NewRNG(2, "lmops")
	p := func(shape ...int) *Tensor { return randParam(r, shape...) }
	rot := NewRotary(8, 4, 10000)
	full := NewRotary(6, 6, 500000)
	pos := []int{0, 1, 2, 0, 1, 2}
	cases := []struct {
		name string
		in   []*Tensor
		f    func(g *Graph, x []*Tensor) *Tensor
	}{
		{"RoPE/partial", []*Tensor{p(6, 16)}, func(g *Graph, x []*Tensor) *Tensor { return g.RoPE(x[0], rot, pos) }},
		{"RoPE/full", []*Tensor{p(6, 12)}, func(g *Graph, x []*Tensor) *Tensor { return g.RoPE(x[0], full, []int{5, 1, 7, 0, 3, 2}) }},
		{"GroupedCausalAttention/4-2", []*Tensor{p(2*4, 4*3), p(2*4, 2*3), p(2*4, 2*3)}, func(g *Graph, x []*Tensor) *Tensor {
			return g.GroupedCausalAttention(x[0], x[1], x[2], 2, 4, 4, 2, 0.577)
		}},
		{"GroupedCausalAttention/mha", []*Tensor{p(2*3, 6), p(2*3, 6), p(2*3, 6)}, func(g *Graph, x []*Tensor) *Tensor {
			return g.GroupedCausalAttention(x[0], x[1], x[2], 2, 3, 2, 2, 0.7)
		}},
		{"GatherCols", []*Tensor{p(3, 5)}, func(g *Graph, x []*Tensor) *Tensor { return g.GatherCols(x[0], []int{4, 0, 2, 2}) }},
		{"SiLU", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.SiLU(x[0]) }},
		{"GELUErf", []*Tensor{p(3, 4)}, func(g *Graph, x []*Tensor) *Tensor { return g.GELUErf(x[0]) }},
		{"RMSNormEps", []*Tensor{p(3, 6), p(6)}, func(g *Graph, x []*Tensor) *Tensor { return g.RMSNormEps(x[0], x[1], 1e-6) }},
		{"LayerNormEps", []*Tensor{p(3, 6), p(6), p(6)}, func(g *Graph, x []*Tensor) *Tensor { return g.LayerNormEps(x[0], x[1], x[2], 1e-3) }},
		{"LMCrossEntropy/chunk2", []*Tensor{p(5, 4), p(7, 4)}, func(g *Graph, x []*Tensor) *Tensor {
			return g.LMCrossEntropy(x[0], x[1], []int{3, -100, 6, 0, 3}, 2)
		}},
		{"LMCrossEntropy/one-chunk", []*Tensor{p(5, 4), p(7, 4)}, func(g *Graph, x []*Tensor) *Tensor {
			return g.LMCrossEntropy(x[0], x[1], []int{-100, 1, 6, 0, -100}, 0)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { gradCheck(t, c.name, c.in, c.f) })
	}
}

// TestRoPEHalfSplit pins the convention: column i pairs with i+Dims/2
// (rotate_half), the columns past Dims pass through, and the frequencies are
// 1/θ^(2i/Dims). An interleaved rotation (pairs 2i, 2i+1) fails.
func TestRoPEHalfSplit(t *testing.T) {
	r := NewRotary(6, 4, 100)
	x := New(1, 6)
	x.Data[0] = 1 // column 0 pairs with column 2
	g := NewGraph()
	y := g.RoPE(x, r, []int{3})
	a0 := 3.0 * 1                    // inv_freq[0] = 1
	a1 := 3.0 / math.Pow(100, 2.0/4) // inv_freq[1]
	want := []float64{math.Cos(a0), 0, math.Sin(a0), 0, 0, 0}
	for i, w := range want {
		if math.Abs(float64(y.Data[i])-w) > 1e-6 {
			t.Fatalf("RoPE(e0) = %v, want %v", y.Data, want)
		}
	}
	if got := float64(r.InvFreq()[1]); math.Abs(got-a1/3) > 1e-7 {
		t.Errorf("inv_freq[1] = %v, want %v", got, a1/3)
	}
}

// TestGroupedAttentionHeadMap checks that kv head j serves q heads
// j·nRep…: attention with 4 q heads over 2 kv heads equals plain attention
// with each kv head repeated (repeat_interleave), not tiled (j%nKV).
func TestGroupedAttentionHeadMap(t *testing.T) {
	r := NewRNG(4, "gqa")
	batch, seq, hd := 2, 5, 3
	q, k, v := New(batch*seq, 4*hd), New(batch*seq, 2*hd), New(batch*seq, 2*hd)
	for _, x := range []*Tensor{q, k, v} {
		r.FillNormal(x, 0, 1)
	}
	rep := func(x *Tensor) *Tensor { // repeat_interleave(2) on the head axis
		y := New(batch*seq, 4*hd)
		for row := range batch * seq {
			for h := range 4 {
				copy(y.Data[row*4*hd+h*hd:row*4*hd+(h+1)*hd], x.Data[row*2*hd+(h/2)*hd:row*2*hd+(h/2+1)*hd])
			}
		}
		return y
	}
	g := &Graph{NoGrad: true}
	got := g.GroupedCausalAttention(q, k, v, batch, seq, 4, 2, 0.5)
	want := g.GroupedCausalAttention(q, rep(k), rep(v), batch, seq, 4, 4, 0.5)
	for i := range want.Data {
		if math.Abs(float64(got.Data[i]-want.Data[i])) > 1e-6 {
			t.Fatalf("element %d: GQA %v, repeated MHA %v", i, got.Data[i], want.Data[i])
		}
	}
	// And MHA equals the existing CausalSelfAttention at 1/√hd.
	mha := g.GroupedCausalAttention(q, q, q, batch, seq, 4, 4, float32(1/math.Sqrt(float64(hd))))
	ref := g.CausalSelfAttention(q, q, q, batch, seq, 4)
	for i := range ref.Data {
		if math.Abs(float64(mha.Data[i]-ref.Data[i])) > 1e-6 {
			t.Fatalf("element %d: %v, CausalSelfAttention %v", i, mha.Data[i], ref.Data[i])
		}
	}
}

// TestLMCrossEntropyMatchesFull checks the chunked loss and its gradients
// against CrossEntropy over the full logits (to 1e-6), for several chunk
// sizes, and that with a large vocabulary the graph never holds an N×V
// buffer: its arena after the loss is far below N·V floats.
func TestLMCrossEntropyMatchesFull(t *testing.T) {
	r := NewRNG(5, "ce")
	n, d, v := 37, 16, 3001
	h, w := randParam(r, n, d), randParam(r, v, d)
	kernelsScale := float32(0.3)
	for i := range h.Data {
		h.Data[i] *= kernelsScale
	}
	targets := make([]int, n)
	for i := range targets {
		targets[i] = int(r.Uint64() % uint64(v))
		if i%5 == 2 {
			targets[i] = -100
		}
	}
	g := NewGraph()
	ref := g.CrossEntropy(g.MatMul(h, w, false, true), targets)
	g.Backward(ref)
	dh0, dw0 := append([]float32(nil), h.Grad...), append([]float32(nil), w.Grad...)
	for _, chunk := range []int{0, 1, 4, 36, 100} {
		h.ZeroGrad()
		w.ZeroGrad()
		g := NewGraph()
		loss := g.LMCrossEntropy(h, w, targets, chunk)
		if diff := math.Abs(float64(loss.Data[0] - ref.Data[0])); diff > 1e-6*math.Abs(float64(ref.Data[0])) {
			t.Errorf("chunk %d: loss %v, full %v", chunk, loss.Data[0], ref.Data[0])
		}
		g.Backward(loss)
		for _, c := range []struct {
			name      string
			got, want []float32
		}{{"dh", h.Grad, dh0}, {"dw", w.Grad, dw0}} {
			var mx, scale float64
			for i := range c.want {
				mx = math.Max(mx, math.Abs(float64(c.got[i]-c.want[i])))
				scale = math.Max(scale, math.Abs(float64(c.want[i])))
			}
			if mx > 1e-6*scale+1e-9 {
				t.Errorf("chunk %d: %s max diff %g (max %g)", chunk, c.name, mx, scale)
			}
		}
	}

	// Memory: vocabulary 50304, 512 rows, frozen head: the full logits
	// would be 103 MB; the chunked loss holds one 16 MB chunk, dH and the
	// hidden gather buffer.
	n, d, v = 512, 32, 50304
	hb := randParam(r, n, d)
	wb := New(v, d)
	r.FillNormal(wb, 0, 0.02)
	tg := make([]int, n)
	for i := range tg {
		tg[i] = i * 97 % v
	}
	var m Meter
	g2 := &Graph{Meter: &m}
	g2.Backward(g2.LMCrossEntropy(hb, wb, tg, 0))
	full := int64(4 * n * v)
	if m.Peak() > full/4 {
		t.Errorf("LMCrossEntropy held %d bytes at peak; the N×V logits alone are %d", m.Peak(), full)
	}
	t.Logf("N=%d V=%d: peak %d bytes held, full logits %d", n, v, m.Peak(), full)
}

// TestFusedCausalAttentionMatchesSliced checks FusedCausalAttention on a
// fused [q | k | v] tensor against slicing it and running
// GroupedCausalAttention: output and the fused tensor's gradient equal bit
// for bit. Catches a wrong column offset or stride of k or v, gradients
// written to the wrong block, and workers racing on shared columns (run
// with GOMAXPROCS > 1).
func TestFusedCausalAttentionMatchesSliced(t *testing.T) {
	r := NewRNG(3, "fused-attn")
	batch, seq, heads, d := 3, 7, 4, 16
	qkv := randParam(r, batch*seq, 3*d)
	up := randParam(r, batch*seq, d) // upstream gradient through a dot product
	run := func(fused bool) ([]float32, []float32) {
		qkv.ZeroGrad()
		g := NewGraph()
		var y *Tensor
		if fused {
			y = g.FusedCausalAttention(qkv, batch, seq, heads, 0.3)
		} else {
			q, k, v := g.SliceCols(qkv, 0, d), g.SliceCols(qkv, d, 2*d), g.SliceCols(qkv, 2*d, 3*d)
			y = g.GroupedCausalAttention(q, k, v, batch, seq, heads, heads, 0.3)
		}
		g.Backward(g.Sum(g.Mul(y, up)))
		return append([]float32(nil), y.Data...), append([]float32(nil), qkv.Grad...)
	}
	y0, g0 := run(false)
	y1, g1 := run(true)
	for i := range y0 {
		if math.Float32bits(y0[i]) != math.Float32bits(y1[i]) {
			t.Fatalf("output %d: sliced %g, fused %g", i, y0[i], y1[i])
		}
	}
	for i := range g0 {
		if math.Float32bits(g0[i]) != math.Float32bits(g1[i]) {
			t.Fatalf("gradient %d (column %d): sliced %g, fused %g", i, i%(3*d), g0[i], g1[i])
		}
	}
}
