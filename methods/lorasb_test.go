package methods

import (
	"math"
	"testing"

	"peftbench/nn"
)

func init() {
	// B, A and R₀ all derive from the gradient: nothing is exported.
	// update "grad" is left to TestLoRASBInit: on the cross-check's one
	// batch B and A are G's own singular vectors, so R's off-diagonal
	// gradient is rounding noise at step 0, which Adam amplifies to full
	// steps in either implementation.
	addTorchCase(torchSpec{name: "lora-sb", method: "lora-sb", opts: map[string]any{"rank": 4, "init_lr": 1e-2}, lr: 5e-2, clip: 0.03})
	addTorchCase(torchSpec{name: "lora-sb-residual", method: "lora-sb",
		opts: map[string]any{"rank": 4, "init_lr": 1e-2, "residual": true}, lr: 5e-2, clip: 0.03})
}

// TestLoRASBInit: B = U_r and A = V_rᵀ with orthonormal columns / rows,
// R = diag(S_r) (descending), and B·R·A the rank-r truncation of the
// first-update approximation −η·sign(G) (or −η·G), G the hand-computed
// gradient averaged over the batches; the step-0 ΔW is B·R·A (W0 kept),
// or 0 with residual.
func TestLoRASBInit(t *testing.T) {
	for _, opts := range []map[string]any{
		{"rank": 3, "grad_batches": 3, "init_lr": 1e-3},
		{"rank": 2, "grad_batches": 2, "update": "grad", "init_lr": 0.5, "residual": true},
	} {
		h := newHandMLP(opts["grad_batches"].(int))
		att, err := Attach("lora-sb", h.layers(), opts, nn.NewRNG(1, "method"))
		if err != nil {
			t.Fatal(err)
		}
		if err := att.(BeforeTrainer).BeforeTraining(EstimateGrads(h.loss)); err != nil {
			t.Fatal(err)
		}
		gs := h.grads()
		r, eta := opts["rank"].(int), opts["init_lr"].(float64)
		for k, l := range h.layers() {
			m := l.Adapter.(*LoRASB)
			upd := make([]float64, len(gs[k]))
			for i, g := range gs[k] {
				if opts["update"] == "grad" {
					upd[i] = -eta * g
				} else {
					upd[i] = -eta * sign(g)
				}
			}
			want, _ := truncSVD(upd, l.Out, l.In, r, false)
			bra := product(product32(m.B.Data, m.R.Data, l.Out, r, r), m.A.Data, l.Out, r, l.In)
			if d := relGap(bra, want); d > 1e-4 {
				t.Errorf("%v %s: B·R·A off the rank-%d truncation of the first update by %.3g relative", opts, l.Name, r, d)
			}
			checkOrthonormal(t, transpose(m.B.Data, l.Out, r), r, l.Out, l.Name+" B's columns")
			checkOrthonormal(t, m.A.Data, r, l.In, l.Name+" A's rows")
			for p := range r {
				for q := range r {
					v := float64(m.R.Data[p*r+q])
					if p != q && v != 0 || p == q && (v <= 0 || p > 0 && v > float64(m.R.Data[(p-1)*r+p-1])) {
						t.Errorf("%v %s: R[%d,%d] = %g: want diag(S_r), descending", opts, l.Name, p, q, v)
					}
				}
			}
			delta := deltaOf(l)
			var worst float64
			for i, v := range delta {
				w := bra[i]
				if opts["residual"] == true {
					w = 0
				}
				worst = max(worst, math.Abs(float64(v)-w))
			}
			if worst > 1e-6 {
				t.Errorf("%v %s: step-0 ΔW off B·R·A (residual %v) by %.3g", opts, l.Name, opts["residual"], worst)
			}
		}
	}
}

// product32 is product rounded to float32.
func product32(a, b []float32, n, k, m int) []float32 {
	p := product(a, b, n, k, m)
	out := make([]float32, len(p))
	for i, v := range p {
		out[i] = float32(v)
	}
	return out
}

// checkOrthonormal checks that the rows×cols matrix a has orthonormal rows.
func checkOrthonormal(t *testing.T, a []float32, rows, cols int, what string) {
	t.Helper()
	g := product(a, transpose(a, rows, cols), rows, cols, rows)
	for p := range rows {
		for q := range rows {
			want := 0.0
			if p == q {
				want = 1
			}
			if math.Abs(g[p*rows+q]-want) > 1e-5 {
				t.Errorf("%s: Gram[%d,%d] = %.6g, want %g", what, p, q, g[p*rows+q], want)
			}
		}
	}
}
