package nn

import (
	"errors"
	"math"
	"testing"
)

func TestLRSchedule(t *testing.T) {
	cases := []struct {
		kind                string
		warmup, total, step int
		want                float64
	}{
		{"constant", 0, 10, 0, 1},
		{"constant", 4, 10, 2, 0.5},
		{"constant", 4, 10, 9, 1},
		{"cosine", 0, 10, 0, 1},
		{"cosine", 0, 10, 5, 0.5},
		{"cosine", 2, 12, 1, 0.5},
		{"cosine", 2, 12, 7, 0.5},
		{"cosine", 2, 12, 12, 0},
		{"linear", 0, 10, 0, 1},
		{"linear", 0, 10, 5, 0.5},
		{"linear", 2, 12, 7, 0.5},
		{"linear", 2, 12, 20, 0},
	}
	for _, c := range cases {
		if got := LRSchedule(c.kind, 2, c.warmup, c.total, c.step); math.Abs(got-2*c.want) > 1e-12 {
			t.Errorf("LRSchedule(%q, 2, warmup %d, total %d, step %d) = %v, want %v", c.kind, c.warmup, c.total, c.step, got, 2*c.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("unknown schedule did not panic")
		}
	}()
	LRSchedule("exponential", 1, 0, 10, 5)
}

func TestClipGradNorm(t *testing.T) {
	a, b := Param("a", 2), Param("b", 1)
	copy(a.Grad, []float32{3, 0})
	copy(b.Grad, []float32{4})
	ps := []ParamRef{{Name: "a", T: a}, {Name: "b", T: b}}
	if n := ClipGradNorm(ps, 10); n != 5 || a.Grad[0] != 3 {
		t.Fatalf("under the limit: norm %v, grad %v; want 5 and unchanged", n, a.Grad)
	}
	if n := ClipGradNorm(ps, 1); n != 5 {
		t.Fatalf("norm %v, want 5", n)
	}
	if n := GradNorm(ps); math.Abs(n-1) > 1e-6 {
		t.Errorf("after clipping to 1 the norm is %v", n)
	}
}

func TestSGDMomentum(t *testing.T) {
	// torch.optim.SGD(momentum=0.9): buf₁ = g, bufₜ = 0.9·bufₜ₋₁ + g; p −= lr·buf.
	p := Param("p", 1)
	p.Data[0] = 1
	o := &SGD{Momentum: 0.9}
	ps := []ParamRef{{Name: "p", T: p, LRMul: 1}}
	want := []float32{0.9, 0.71, 0.439}
	for i, w := range want {
		p.Grad[0] = 1
		o.Step(ps, 0.1)
		if math.Abs(float64(p.Data[0]-w)) > 1e-6 {
			t.Fatalf("step %d: p = %v, want %v", i+1, p.Data[0], w)
		}
	}
}

func TestAdamWFirstStep(t *testing.T) {
	// After one step Adam moves every coordinate by lr·sign(g) (up to ε),
	// after decoupled decay p·(1−lr·wd); LRMul scales lr.
	p := Param("p", 3)
	copy(p.Data, []float32{1, -2, 0.5})
	copy(p.Grad, []float32{0.3, -4, 0})
	o := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}
	o.Step([]ParamRef{{Name: "p", T: p, LRMul: 2, Decay: true}}, 0.01)
	want := []float64{1*(1-0.002) - 0.02, -2*(1-0.002) + 0.02, 0.5 * (1 - 0.002)}
	for i, w := range want {
		if math.Abs(float64(p.Data[i])-w) > 1e-6 {
			t.Errorf("p[%d] = %v, want %v", i, p.Data[i], w)
		}
	}
}

func TestCheckFinite(t *testing.T) {
	a := Param("a", 3)
	b := Param("b", 2)
	if err := CheckFinite(3, a, b); err != nil {
		t.Fatal(err)
	}
	b.Grad[1] = float32(math.Inf(1))
	err := CheckFinite(7, a, b)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Step != 7 || nf.Tensor != "b" || !nf.Grad || nf.Index != 1 {
		t.Fatalf("CheckFinite = %v, want step 7, gradient of b[1]", err)
	}
	a.Data[0] = float32(math.NaN())
	err = CheckFiniteParams(8, []ParamRef{{Name: "fc1.lora_A", T: a}})
	if !errors.As(err, &nf) || nf.Tensor != "fc1.lora_A" || nf.Grad {
		t.Fatalf("CheckFiniteParams = %v, want the value of fc1.lora_A", err)
	}
}

func TestAdamWStepsPerParameter(t *testing.T) {
	// torch counts steps per parameter: one that first gets a gradient at
	// the optimiser's third step takes a first step (lr·sign(g)), and
	// Reset forgets every moment and count.
	a, b := Param("a", 1), Param("b", 1)
	o := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	ps := []ParamRef{{Name: "a", T: a}, {Name: "b", T: b}}
	grad := b.Grad
	b.Grad = nil // b frozen for two steps
	for range 2 {
		a.Grad[0] = 1
		o.Step(ps, 0.01)
	}
	b.Grad = grad
	a.Grad[0], b.Grad[0] = 1, 0.5
	o.Step(ps, 0.01)
	if got := b.Data[0]; math.Abs(float64(got)+0.01) > 1e-7 {
		t.Errorf("b after its first step = %v, want −0.01 (a first Adam step)", got)
	}
	o.Reset()
	if o.StateBytes() != 0 {
		t.Errorf("StateBytes after Reset = %d, want 0", o.StateBytes())
	}
	before := a.Data[0]
	a.Grad[0] = -3
	o.Step(ps, 0.01)
	if d := a.Data[0] - before; math.Abs(float64(d)-0.01) > 1e-7 {
		t.Errorf("a moved %v after Reset, want +0.01 (a first Adam step)", d)
	}
}
