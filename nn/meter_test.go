package nn

import "testing"

func TestMeter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		adds      []int64
		cur, peak int64
	}{
		{"empty", nil, 0, 0},
		{"grow", []int64{10, 20}, 30, 30},
		{"free keeps the peak", []int64{10, 20, -25, 5}, 10, 30},
		{"new peak after a free", []int64{10, -10, 40}, 40, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Meter
			for _, n := range tc.adds {
				m.Add(n)
			}
			if m.Current() != tc.cur || m.Peak() != tc.peak {
				t.Errorf("current %d, peak %d; want %d, %d", m.Current(), m.Peak(), tc.cur, tc.peak)
			}
		})
	}
	var nilMeter *Meter
	nilMeter.Add(5) // counts nothing, does not panic
	if nilMeter.Peak() != 0 {
		t.Error("nil meter has a peak")
	}
}

func TestReachableBytes(t *testing.T) {
	p := Param("p", 3, 4) // Data and Grad: 2·12·4 bytes
	frozen := New(5)      // 20 bytes
	shared := make([]float32, 8)
	type adapter struct {
		A, B  *Tensor
		views [][]float32
		self  *adapter
		byKey map[string]*Tensor
		ids   []int
		any   any
	}
	a := &adapter{A: p, B: frozen, views: [][]float32{shared, shared[2:], shared[:4]}, byKey: map[string]*Tensor{"p": p, "f": frozen}, ids: make([]int, 2, 3)}
	a.self = a
	a.any = a
	for _, tc := range []struct {
		name  string
		roots []any
		want  int64
	}{
		{"nothing", nil, 0},
		{"nil tensor", []any{(*Tensor)(nil)}, 0},
		{"param: data and grad", []any{p}, 96},
		{"frozen tensor", []any{frozen}, 20},
		{"one array through views", []any{[][]float32{shared, shared[3:5]}}, 32},
		{"adapter: every tensor once, cycles, maps, capacity", []any{a}, 96 + 20 + 32 + 3*int64(intSize)},
		{"roots share tensors", []any{p, a, []*Tensor{p, frozen}}, 96 + 20 + 32 + 3*int64(intSize)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReachableBytes(tc.roots...); got != tc.want {
				t.Errorf("ReachableBytes = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestGraphMeter: a graph charges its meter with its arena as it grows,
// a repeated pass of the same shapes charges nothing more, and Release
// uncharges it.
func TestGraphMeter(t *testing.T) {
	var m Meter
	g := &Graph{Meter: &m}
	mlp := NewMLP([]int{6, 8, 3}, NewRNG(1, "init"))
	for _, l := range mlp.Layers {
		l.Weight.SetRequiresGrad(true)
	}
	x := New(4, 6)
	NewRNG(2, "x").FillUniform(x, -1, 1)
	pass := func() {
		g.Reset()
		g.Backward(g.CrossEntropy(mlp.Forward(g, x), []int{0, 1, 2, 0}))
	}
	pass()
	first := m.Current()
	// Forward: 4×8 and 4×3 activations with gradients, 4×8 ReLU with its
	// gradient: at least 2·4·(8+8+3) floats.
	if first < 4*2*4*(8+8+3) || first != g.HeldBytes() {
		t.Fatalf("after one pass: meter %d, graph holds %d", first, g.HeldBytes())
	}
	pass()
	if m.Current() != first {
		t.Errorf("a second pass of the same shapes: meter %d, want %d", m.Current(), first)
	}
	g.Release()
	if m.Current() != 0 || g.HeldBytes() != 0 || m.Peak() != first {
		t.Errorf("after Release: meter %d, graph %d, peak %d (want 0, 0, %d)", m.Current(), g.HeldBytes(), m.Peak(), first)
	}
	pass() // usable after Release
	if m.Current() != first {
		t.Errorf("a pass after Release: meter %d, want %d", m.Current(), first)
	}
}

// TestOptimizerStateBytes: AdamW holds two float32 moments per element of
// every parameter with a gradient, SGD with momentum one buffer, plain SGD
// none; the meter sees the same.
func TestOptimizerStateBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  func(m *Meter) Optimizer
		per  int64 // bytes per trainable element
	}{
		{"adamw", func(m *Meter) Optimizer { a := NewAdamW(); a.Meter = m; return a }, 8},
		{"sgd momentum", func(m *Meter) Optimizer { return &SGD{Momentum: 0.9, Meter: m} }, 4},
		{"sgd", func(m *Meter) Optimizer { return &SGD{Meter: m} }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Meter
			o := tc.opt(&m)
			a, b, frozen := Param("a", 3, 5), Param("b", 7), New(11)
			ps := []ParamRef{{Name: "a", T: a}, {Name: "b", T: b}, {Name: "frozen", T: frozen}}
			for range 2 {
				o.Step(ps, 0.1)
			}
			want := tc.per * (15 + 7)
			if got := o.(StateSizer).StateBytes(); got != want {
				t.Errorf("StateBytes = %d, want %d", got, want)
			}
			if m.Current() != want {
				t.Errorf("meter %d, want %d", m.Current(), want)
			}
		})
	}
}
