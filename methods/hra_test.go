package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

// conformNonIdentity runs the conformance checks that still apply to an
// option set whose init is not the base model (HRA's apply_GS or
// init_weights = false, RoAd's and IA3's random inits), which the alt set
// cannot declare: the step-0 model differs from the base, the trainable
// count matches the formula, the loss falls, the gradients match finite
// differences and the merged weight and bias give the adapter's outputs.
func conformNonIdentity(t *testing.T, method string, opts map[string]any) {
	t.Helper()
	for _, m := range refModels(2) {
		base := eval(m.out)
		att := attachRef(t, m, method, opts)
		if d := relDiff(eval(m.out), base); d <= 1e-6 {
			t.Errorf("%s %v on %s: starts %.3g from the base model, want a random init", method, opts, m.name, d)
		}
		o, _ := ResolveOptions(method, 0, opts)
		mm, _ := Lookup(method)
		var got int64
		for _, p := range att.Params() {
			got += int64(p.T.Size())
		}
		if want := mm.TrainableParams(Shapes(m.targets), o); got != want {
			t.Errorf("%s %v on %s: %d trainable, formula %d", method, opts, m.name, got, want)
		}
		tr := newTrainer(t, att, m.loss)
		if first, last := trainChecked(t, tr, m, mm.Info()); !(last < first) {
			t.Errorf("%s %v on %s: loss %v after %d steps, %v before", method, opts, m.name, last, conformSteps, first)
		}
		if d := mergeGap(m); d > 1e-5 {
			t.Errorf("%s %v on %s: merged weights give outputs %.3g away from the adapter's", method, opts, m.name, d)
		}
		detach(att)
	}
}

// hraH computes H from U independently of the adapter, in float64: the
// product of the reflections I − 2ũũᵀ in column order, or I − 2QQᵀ after
// classical Gram–Schmidt.
func hraH(u []float32, in, r int, gs bool) [][]float64 {
	col := func(i int) []float64 {
		c := make([]float64, in)
		for j := range in {
			c[j] = float64(u[j*r+i])
		}
		return c
	}
	normalize := func(c []float64) {
		var s float64
		for _, v := range c {
			s += v * v
		}
		for j := range c {
			c[j] /= math.Sqrt(s)
		}
	}
	h := make([][]float64, in)
	for i := range h {
		h[i] = make([]float64, in)
		h[i][i] = 1
	}
	if gs {
		var qs [][]float64
		for i := range r {
			c := col(i)
			for _, q := range qs {
				var d float64
				for j := range in {
					d += q[j] * c[j]
				}
				for j := range in {
					c[j] -= d * q[j]
				}
			}
			normalize(c)
			qs = append(qs, c)
		}
		for _, q := range qs {
			for a := range in {
				for b := range in {
					h[a][b] -= 2 * q[a] * q[b]
				}
			}
		}
		return h
	}
	for i := range r {
		c := col(i)
		normalize(c)
		// H ← H·(I − 2ccᵀ) = H − 2(Hc)cᵀ
		for a := range in {
			var hc float64
			for b := range in {
				hc += h[a][b] * c[b]
			}
			for b := range in {
				h[a][b] -= 2 * hc * c[b]
			}
		}
	}
	return h
}

// TestHRAOrthogonal trains HRA on the reference MLP and checks its
// defining properties: H (from the adapter) is orthogonal to 1e-5 and
// equals the product of reflections of ũ_i (or I − 2QQᵀ), the merged weight
// is W0·H, and the paired init starts at H = I (odd r: H ≠ I, as HF).
func TestHRAOrthogonal(t *testing.T) {
	for _, c := range []struct {
		name     string
		opts     map[string]any
		identity bool // H = I at step 0
	}{
		{"default", map[string]any{"rank": 4}, true},
		{"odd rank", map[string]any{"rank": 3}, false},
		{"random init", map[string]any{"rank": 4, "init_weights": false}, false},
		{"gram-schmidt", map[string]any{"rank": 5, "apply_GS": true, "init_weights": false}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := refModels(1)[0]
			att := attachRef(t, m, "hra", c.opts)
			l := m.targets[1] // fc2, 256×256
			a := l.Adapter.(*HRA)
			h0 := a.H(l.In)
			var dev float64
			for i := range l.In {
				for j := range l.In {
					want := 0.0
					if i == j {
						want = 1
					}
					dev = max(dev, math.Abs(float64(h0[i*l.In+j])-want))
				}
			}
			if c.identity && dev > 1e-6 {
				t.Errorf("step 0: H is %.3g from I, want the identity", dev)
			}
			if !c.identity && dev < 1e-3 {
				t.Errorf("step 0: H is %.3g from I, want a random H", dev)
			}
			train(t, m, att, 10, 1e-2)
			in := l.In
			h := a.H(in)
			// orthogonality: HᵀH = I
			var orth float64
			for i := range in {
				for j := range in {
					var s float64
					for k := range in {
						s += float64(h[k*in+i]) * float64(h[k*in+j])
					}
					if i == j {
						s--
					}
					orth = max(orth, math.Abs(s))
				}
			}
			if orth > 1e-5 {
				t.Errorf("after training, |HᵀH − I| = %.3g", orth)
			}
			ref := hraH(a.U.Data, in, a.Rank, a.GS)
			var dh float64
			for i := range in {
				for j := range in {
					dh = max(dh, math.Abs(float64(h[i*in+j])-ref[i][j]))
				}
			}
			if dh > 1e-5 {
				t.Errorf("H differs from the product of reflections by %.3g", dh)
			}
			if dh := maxAbs(sub(h, h0)); dh < 1e-4 {
				t.Errorf("training moved H by only %.3g", dh)
			}
			// merged = W0·H
			w := l.Merged()
			var dw float64
			for i := range l.Out {
				for j := range in {
					var s float64
					for k := range in {
						s += float64(l.Weight.Data[i*in+k]) * ref[k][j]
					}
					dw = max(dw, math.Abs(float64(w[i*in+j])-s))
				}
			}
			if dw > 1e-5 {
				t.Errorf("merged weight differs from W0·H by %.3g", dw)
			}
		})
	}
}

// TestHRANonIdentityOptions runs the conformance checks on the option sets
// that start away from the base model.
func TestHRANonIdentityOptions(t *testing.T) {
	for _, opts := range []map[string]any{
		{"apply_GS": true, "init_weights": false},
		{"apply_GS": true}, // HF's paired init: GS of a repeated column is noise
		{"init_weights": false},
		{"rank": 5},
	} {
		conformNonIdentity(t, "hra", opts)
	}
}

// TestHRACheckLayers: with apply_GS the rank may not exceed in.
func TestHRACheckLayers(t *testing.T) {
	layers := []LayerShape{{Name: "fc1", Out: 64, In: 16}}
	for _, c := range []struct {
		opts map[string]any
		ok   bool
	}{
		{map[string]any{"rank": 32}, true},
		{map[string]any{"rank": 16, "apply_GS": true}, true},
		{map[string]any{"rank": 17, "apply_GS": true}, false},
	} {
		o, err := ResolveOptions("hra", 0, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckLayers("hra", o, layers); (err == nil) != c.ok {
			t.Errorf("%v: error %v, want ok=%v", c.opts, err, c.ok)
		}
	}
}

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		return map[string][]float32{"hra_u": slices.Clone(l.Adapter.(*HRA).U.Data)}
	}
	addTorchCase(torchSpec{name: "hra", method: "hra", opts: map[string]any{"rank": 4}, lr: 2e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "hra-gs", method: "hra", opts: map[string]any{"rank": 3, "apply_GS": true, "init_weights": false}, lr: 2e-2, clip: 0.03, export: export})
}
