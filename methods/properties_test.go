package methods

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

// attachRef attaches method with opts to the reference model m.
func attachRef(t *testing.T, m refModel, method string, opts map[string]any) Attachment {
	t.Helper()
	att, err := Attach(method, m.targets, opts, nn.NewRNG(3, "method"))
	if err != nil {
		t.Fatal(err)
	}
	return att
}

func train(t *testing.T, m refModel, att Attachment, steps int, lr float32) *trainer {
	t.Helper()
	tr := newTrainer(t, att, m.loss)
	for s := range steps {
		tr.step(s, steps, lr)
	}
	return tr
}

func loraOf(t *testing.T, l *nn.Linear) *LoRA {
	t.Helper()
	a, ok := l.Adapter.(*LoRA)
	if !ok {
		t.Fatalf("%s: adapter is %T, want *LoRA", l.Name, l.Adapter)
	}
	return a
}

func maxAbs(x []float32) float64 {
	var m float64
	for _, v := range x {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

func sub(a, b []float32) []float32 {
	d := make([]float32, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return d
}

func TestRSLoRAScale(t *testing.T) {
	for _, r := range []int{1, 4, 16, 64} {
		for _, c := range []struct {
			method string
			want   float64
		}{{"lora", 8 / float64(r)}, {"rslora", 8 / math.Sqrt(float64(r))}} {
			m := refModels(1)[0]
			attachRef(t, m, c.method, map[string]any{"rank": r, "alpha": 8})
			a := loraOf(t, m.targets[0])
			if math.Abs(float64(a.Scale)-c.want) > 1e-6*c.want {
				t.Errorf("%s r=%d: scale %v, want %v", c.method, r, a.Scale, c.want)
			}
			// The merged update is scale·B·A.
			nn.NewRNG(9, "b").FillNormal(a.B, 0, 1)
			l := m.targets[0]
			d := sub(a.Merged(l), l.Weight.Data)
			ref := make([]float32, len(d))
			addLowRank(ref, a.B.Data, a.A.Data, l.Out, r, l.In, c.want)
			if e := maxAbs(sub(d, ref)); e > 1e-5*max(1, maxAbs(ref)) {
				t.Errorf("%s r=%d: ΔW off scale·B·A by %g", c.method, r, e)
			}
		}
	}
}

func TestLoRAPlusLearningRates(t *testing.T) {
	m := refModels(1)[0]
	att := attachRef(t, m, "loraplus", nil)
	ps := att.Params()
	a, b := ps[0], ps[1]
	if b.LRMul != 16*a.LRMul {
		t.Fatalf("LRMul A %v, B %v; want B = 16·A", a.LRMul, b.LRMul)
	}
	// One AdamW step with equal gradients: Adam's first step moves every
	// element by lr·mul, so B moves λ times as far as A.
	for _, p := range ps[:2] {
		for i := range p.T.Grad {
			p.T.Grad[i] = 1
		}
	}
	a0, b0 := slices.Clone(a.T.Data), slices.Clone(b.T.Data)
	opt := nn.NewAdamW()
	opt.WeightDecay = 0
	opt.Step(ps[:2], 1e-3)
	da, db := maxAbs(sub(a.T.Data, a0)), maxAbs(sub(b.T.Data, b0))
	if math.Abs(db/da-16) > 1e-3 {
		t.Errorf("step sizes A %g, B %g: ratio %g, want 16", da, db, db/da)
	}
}

func TestLoRAFAFreezesA(t *testing.T) {
	for _, pre := range []bool{true, false} {
		m := refModels(1)[0]
		att := attachRef(t, m, "lora-fa", map[string]any{"precondition": pre})
		var as, bs [][]float32
		for _, l := range m.targets {
			a := loraOf(t, l)
			as, bs = append(as, slices.Clone(a.A.Data)), append(bs, slices.Clone(a.B.Data))
		}
		for _, p := range att.Params() {
			for _, l := range m.targets {
				if p.T == loraOf(t, l).A {
					t.Errorf("A of %s is trainable", l.Name)
				}
			}
		}
		train(t, m, att, 5, 1e-2)
		for i, l := range m.targets {
			a := loraOf(t, l)
			if !slices.Equal(a.A.Data, as[i]) {
				t.Errorf("precondition=%v: %s: A changed in training", pre, l.Name)
			}
			if slices.Equal(a.B.Data, bs[i]) {
				t.Errorf("precondition=%v: %s: B did not train", pre, l.Name)
			}
		}
	}
}

func TestLoRAFAPreconditioning(t *testing.T) {
	// g_B ← (1/s²)·g_B·(AAᵀ+δI)⁻¹: then g_B·(AAᵀ+δI)·s² gives back g_B.
	m := refModels(1)[0]
	att := attachRef(t, m, "lora-fa", map[string]any{"alpha": 16}).(*loraFA)
	g := nn.NewGraph()
	g.Backward(m.loss(g))
	a := att.adapters[0]
	raw := slices.Clone(a.B.Grad)
	att.BeforeStep(0, 1)
	r, in := a.Rank, len(a.A.Data)/a.Rank
	am := dense(a.A.Data, r, in)
	var gram mat.Dense
	gram.Mul(am, am.T())
	got := dense(a.B.Grad, len(raw)/r, r)
	var back mat.Dense
	back.Mul(got, &gram)
	s2 := float64(a.Scale) * float64(a.Scale)
	var worst, scale float64
	for i, v := range raw {
		worst = max(worst, math.Abs(back.RawMatrix().Data[i]*s2-float64(v)))
		scale = max(scale, math.Abs(float64(v)))
	}
	if worst > 1e-4*scale {
		t.Errorf("preconditioned gradient does not invert: error %g of %g", worst, scale)
	}
}

func TestResidualMethodsReconstructW0(t *testing.T) {
	for _, method := range []string{"pissa", "olora"} {
		m := refModels(1)[0]
		attachRef(t, m, method, map[string]any{"rank": 16, "alpha": 32})
		for _, l := range m.targets {
			a := loraOf(t, l)
			// residual + adapter = W0.
			res := slices.Clone(l.Weight.Data)
			addLowRank(res, a.B0.Data, a.A0.Data, l.Out, a.Rank, l.In, -float64(a.Scale))
			full := slices.Clone(res)
			addLowRank(full, a.B.Data, a.A.Data, l.Out, a.Rank, l.In, float64(a.Scale))
			if e := maxAbs(sub(full, l.Weight.Data)); e > 1e-6 {
				t.Errorf("%s %s: residual + s·B·A is %g from W0", method, l.Name, e)
			}
			if maxAbs(a.B.Data) == 0 {
				t.Errorf("%s %s: B is zero: not a decomposition init", method, l.Name)
			}
			// The adapter holds W0's principal part.
			_, s0, _, _ := svd(l.Weight.Data, l.Out, l.In)
			_, sr, _, _ := svd(res, l.Out, l.In)
			switch method {
			case "pissa": // residual singular values are σ_{r+1}, σ_{r+2}, …
				for i := 0; i < 5; i++ {
					if math.Abs(sr[i]-s0[a.Rank+i]) > 1e-4*s0[0] {
						t.Errorf("pissa %s: residual σ%d = %g, want σ%d of W0 = %g", l.Name, i, sr[i], a.Rank+i, s0[a.Rank+i])
					}
				}
			case "olora": // B has orthonormal columns.
				bm := dense(a.B.Data, l.Out, a.Rank)
				var btb mat.Dense
				btb.Mul(bm.T(), bm)
				if !mat.EqualApprox(&btb, eye(a.Rank), 1e-5) {
					t.Errorf("olora %s: BᵀB ≠ I", l.Name)
				}
			}
		}
	}
}

func eye(n int) *mat.Dense {
	e := mat.NewDense(n, n, nil)
	for i := range n {
		e.Set(i, i, 1)
	}
	return e
}

func TestDoRAMagnitudeAndDetachedNorm(t *testing.T) {
	m := refModels(1)[0]
	att := attachRef(t, m, "dora", nil)
	for _, l := range m.targets {
		d := l.Adapter.(*DoRA)
		want := make([]float32, l.Out)
		rowNorms(want, l.Weight.Data, l.Out, l.In)
		if e := maxAbs(sub(d.M.Data, want)); e != 0 {
			t.Errorf("%s: magnitude is %g from ‖W0‖_row", l.Name, e)
		}
		nn.NewRNG(5, l.Name).FillNormal(d.B, 0, 0.5) // far from the init: the norm depends on B
	}
	// Backward's gradient for B is the derivative with the norm held
	// constant. Along u = ∇_B/‖∇_B‖ the directional derivative is ‖∇_B‖;
	// finite differences agree with it with the norm fixed and disagree
	// with it with the norm recomputed.
	l := m.targets[1]
	d := l.Adapter.(*DoRA)
	g := nn.NewGraph()
	nn.ZeroGrads(att.Params())
	g.Backward(m.loss(g))
	var norm float64
	for _, v := range d.B.Grad {
		norm += float64(v) * float64(v)
	}
	norm = math.Sqrt(norm)
	u := make([]float32, len(d.B.Grad))
	for i, v := range d.B.Grad {
		u[i] = float32(float64(v) / norm)
	}
	b0 := slices.Clone(d.B.Data)
	fd := func(fixed bool) float64 {
		if fixed {
			n := make([]float32, l.Out)
			d.rowNorms(l, n)
			d.fixed = n
			defer func() { d.fixed = nil }()
		}
		const h = 1e-2
		at := func(sign float32) float64 {
			for i := range d.B.Data {
				d.B.Data[i] = b0[i] + sign*h*u[i]
			}
			return float64(eval(m.loss)[0])
		}
		up, down := at(1), at(-1)
		copy(d.B.Data, b0)
		return (up - down) / (2 * h)
	}
	fixed, free := fd(true), fd(false)
	t.Logf("‖∇_B‖ %g; finite differences: norm fixed %g, recomputed %g", norm, fixed, free)
	if math.Abs(fixed-norm) > 0.01*norm {
		t.Errorf("norm fixed: backward %g, finite difference %g", norm, fixed)
	}
	if math.Abs(free-norm) < 0.03*norm {
		t.Errorf("norm recomputed: finite difference %g matches backward %g: the norm is not detached", free, norm)
	}
}

func TestVeRASharedFrozenProjections(t *testing.T) {
	m := refModels(1)[1] // transformer: q, k, v, o share a shape
	att := attachRef(t, m, "vera", map[string]any{"rank": 32})
	byShape := map[[2]int]*VeRA{}
	var frozen [][]float32
	for _, l := range m.targets {
		v := l.Adapter.(*VeRA)
		if v.A.RequiresGrad() || v.B.RequiresGrad() {
			t.Errorf("%s: A or B trainable", l.Name)
		}
		k := [2]int{l.Out, l.In}
		if first, ok := byShape[k]; ok {
			if first.A != v.A || first.B != v.B {
				t.Errorf("%s: A, B not shared with the other %dx%d layers", l.Name, l.Out, l.In)
			}
		} else {
			byShape[k] = v
			frozen = append(frozen, slices.Clone(v.A.Data), slices.Clone(v.B.Data))
		}
		if v.D.Data[0] != 0.1 || maxAbs(v.BV.Data) != 0 {
			t.Errorf("%s: d starts at %v, b at max %v; want 0.1 and 0", l.Name, v.D.Data[0], maxAbs(v.BV.Data))
		}
	}
	if len(byShape) >= len(m.targets) {
		t.Fatalf("no two layers share a shape")
	}
	var names []string
	for _, p := range att.Params() {
		names = append(names, p.Name)
		if p.T.Size() != 32 && p.T.Size() != p.T.Shape[0] {
			t.Errorf("trainable %s has shape %v", p.Name, p.T.Shape)
		}
	}
	if len(names) != 2*len(m.targets) {
		t.Errorf("trainable tensors %v, want d and b per layer", names)
	}
	train(t, m, att, 4, 1e-2)
	i := 0
	seen := map[[2]int]bool{}
	for _, l := range m.targets {
		k := [2]int{l.Out, l.In}
		if seen[k] {
			continue
		}
		seen[k] = true
		v := l.Adapter.(*VeRA)
		if !slices.Equal(v.A.Data, frozen[i]) || !slices.Equal(v.B.Data, frozen[i+1]) {
			t.Errorf("%s: shared A or B changed in training", l.Name)
		}
		i += 2
	}
	// The projections come from the fixed projection seed, not the trial's.
	m2 := refModels(1)[1]
	if _, err := Attach("vera", m2.targets, map[string]any{"rank": 32}, nn.NewRNG(99, "other")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m2.targets[0].Adapter.(*VeRA).A.Data, frozen[0]) {
		t.Error("A depends on the trial's random stream")
	}
}

func TestLoRAXSTrainsOnlyR(t *testing.T) {
	m := refModels(1)[0]
	att := attachRef(t, m, "lora-xs", nil)
	ps := att.Params()
	if len(ps) != len(m.targets) {
		t.Fatalf("%d trainable tensors, want one R per layer", len(ps))
	}
	var ps0, qs0, rs0 [][]float32
	for i, l := range m.targets {
		x := l.Adapter.(*LoRAXS)
		if ps[i].T != x.R || x.R.Shape[0] != x.Rank || x.R.Shape[1] != x.Rank {
			t.Errorf("%s: trainable %s %v, want R r×r", l.Name, ps[i].Name, ps[i].T.Shape)
		}
		if std := rms(x.R.Data); std < 3e-6 || std > 3e-5 {
			t.Errorf("%s: R has rms %g, want about 1e-5", l.Name, std)
		}
		ps0, qs0, rs0 = append(ps0, slices.Clone(x.P.Data)), append(qs0, slices.Clone(x.Q.Data)), append(rs0, slices.Clone(x.R.Data))
	}
	train(t, m, att, 4, 1e-2)
	for i, l := range m.targets {
		x := l.Adapter.(*LoRAXS)
		if !slices.Equal(x.P.Data, ps0[i]) || !slices.Equal(x.Q.Data, qs0[i]) {
			t.Errorf("%s: the SVD factors changed", l.Name)
		}
		if slices.Equal(x.R.Data, rs0[i]) {
			t.Errorf("%s: R did not train", l.Name)
		}
	}
}

func rms(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

func TestAdaLoRABudgetSchedule(t *testing.T) {
	const total, ti, tf, b0, bT = 100, 10, 20, 120, 80
	prev := b0
	for step := 1; step <= total; step++ {
		got, _ := adaBudget(step, total, ti, tf, 1, b0, bT)
		want := b0
		switch {
		case step > total-tf:
			want = bT
		case step > ti:
			x := 1 - float64(step-ti)/float64(total-tf-ti)
			want = bT + int((b0-bT)*x*x*x)
		}
		if got != want {
			t.Errorf("step %d: budget %d, want %d", step, got, want)
		}
		if got > prev {
			t.Errorf("step %d: budget rose from %d to %d", step, prev, got)
		}
		prev = got
	}
	// Trained for real, the model ends at the target total rank.
	m := refModels(1)[1]
	const steps = 12
	att := attachRef(t, m, "adalora", map[string]any{"rank": 4, "tinit": 0.25, "tfinal": 0.25})
	ada := att.(*adaLoRAAttachment)
	tr := newTrainer(t, att, m.loss)
	for s := range steps {
		tr.step(s, steps, 1e-2)
		active := 0
		for _, a := range ada.adapters {
			active += a.ActiveRank()
		}
		if want := ada.Budget(s+1, steps); active > want {
			t.Errorf("step %d: %d active triplets, budget %d", s, active, want)
		}
	}
	active := 0
	for _, a := range ada.adapters {
		active += a.ActiveRank()
	}
	if want := 4 * len(m.targets); active != want {
		t.Errorf("final total rank %d, want %d", active, want)
	}
	if b := ada.Budget(1, steps); b != 6*len(m.targets) {
		t.Errorf("initial budget %d, want %d", b, 6*len(m.targets))
	}
}

func TestLoRAGASpansGradient(t *testing.T) {
	m := refModels(1)[0]
	att := attachRef(t, m, "lora-ga", map[string]any{"grad_batches": 1})
	newTrainer(t, att, m.loss) // runs BeforeTraining
	grads, err := EstimateGrads(func(g *nn.Graph, _ int) *nn.Tensor { return m.loss(g) })(m.targets, 1)
	if err != nil {
		t.Fatal(err)
	}
	for k, l := range m.targets {
		a := loraOf(t, l)
		u, _, v, _ := svd(grads[k], l.Out, l.In)
		r := a.Rank
		// A's rows lie in the span of the top-r right singular vectors,
		// B's columns in that of left singular vectors r…2r−1.
		check := func(name string, x *mat.Dense, basis mat.Matrix) {
			var coef, proj, res mat.Dense
			coef.Mul(x, basis)
			proj.Mul(&coef, basis.T())
			res.Sub(x, &proj)
			if f := mat.Norm(&res, 2) / mat.Norm(x, 2); f > 1e-4 {
				t.Errorf("%s: %s is %.2g outside the singular subspace", l.Name, name, f)
			}
			if mat.Norm(x, 2) == 0 {
				t.Errorf("%s: %s is zero", l.Name, name)
			}
		}
		check("A", dense(a.A.Data, r, l.In), v.Slice(0, l.In, 0, r))
		var bt mat.Dense
		bt.CloneFrom(dense(a.B.Data, l.Out, r).T())
		check("Bᵀ", &bt, u.Slice(0, l.Out, r, 2*r))
		// And A is not the span of other directions: the next r miss it.
		var coef mat.Dense
		coef.Mul(dense(a.A.Data, r, l.In), v.Slice(0, l.In, r, 2*r))
		if mat.Norm(&coef, 2) > 1e-4*mat.Norm(dense(a.A.Data, r, l.In), 2) {
			t.Errorf("%s: A overlaps singular directions r…2r−1", l.Name)
		}
	}
}
