package methods

import (
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

func init() {
	export := func(l *nn.Linear) map[string][]float32 {
		return map[string][]float32{"lora_A": slices.Clone(l.Adapter.(*LoRA).A.Data)}
	}
	addTorchCase(torchSpec{name: "lora-pro", method: "lora-pro", opts: map[string]any{"rank": 4, "alpha": 8},
		lr: 1e-2, clip: 0.05, export: export})
	addTorchCase(torchSpec{name: "lora-pro-zero", method: "lora-pro", opts: map[string]any{"rank": 4, "alpha": 16, "lorapro_x": "zero", "init": "gaussian"},
		lr: 1e-2, clip: 0.05, export: export})
}

// randDense is a rows×cols matrix of N(0, std²) draws.
func randDense(rng *nn.RNG, rows, cols int, std float32) *mat.Dense {
	t := nn.New(rows, cols)
	rng.FillNormal(t, 0, std)
	return dense(t.Data, rows, cols)
}

// TestLoRAProEquivalentGradient: for the LoRA gradients of a full gradient
// G (g_A = s·BᵀG, g_B = s·G·Aᵀ), the adjusted pair's equivalent gradient
// s(B·g̃_A + g̃_B·A) is G's projection onto the tangent space of the
// rank-r matrices at B·A, P_B·G + G·P_A − P_B·G·P_A, whatever X; and the
// Sylvester X minimises ‖g̃_A − g_A‖² + ‖g̃_B − g_B‖² (the paper's choice):
// it beats X = 0 and every nearby X.
func TestLoRAProEquivalentGradient(t *testing.T) {
	const m, n, r, s = 9, 7, 3, 2.5
	rng := nn.NewRNG(5, "test")
	A, B, G := randDense(rng, r, n, 1), randDense(rng, m, r, 1), randDense(rng, m, n, 1)
	var gA, gB mat.Dense
	gA.Mul(B.T(), G)
	gA.Scale(s, &gA)
	gB.Mul(G, A.T())
	gB.Scale(s, &gB)
	p := newLoRAProGeometry(A, B, s)

	proj := func(M *mat.Dense) *mat.Dense { // M(MᵀM)⁻¹Mᵀ for M with independent columns
		var mtm, inv, t1, out mat.Dense
		mtm.Mul(M.T(), M)
		if err := inv.Inverse(&mtm); err != nil {
			t.Fatal(err)
		}
		t1.Mul(M, &inv)
		out.Mul(&t1, M.T())
		return &out
	}
	pB, pA := proj(B), proj(mat.DenseCopyOf(A.T()))
	var want, t1, t2 mat.Dense
	want.Mul(pB, G)
	t1.Mul(G, pA)
	want.Add(&want, &t1)
	t2.Mul(pB, &t1)
	want.Sub(&want, &t2)

	x := p.sylvesterX(&gA)
	for _, c := range []struct {
		name string
		x    *mat.Dense
	}{{"X = 0", nil}, {"Sylvester X", x}} {
		fA, fB := p.adjust(&gA, &gB, c.x)
		if d := matDiff(p.equivalent(fA, fB), &want); d > 1e-8 {
			t.Errorf("%s: equivalent gradient differs from the tangent projection of G by %.3g", c.name, d)
		}
	}
	obj := func(x *mat.Dense) float64 {
		fA, fB := p.adjust(&gA, &gB, x)
		var dA, dB mat.Dense
		dA.Sub(fA, &gA)
		dB.Sub(fB, &gB)
		return mat.Norm(&dA, 2)*mat.Norm(&dA, 2) + mat.Norm(&dB, 2)*mat.Norm(&dB, 2)
	}
	best := obj(x)
	if zero := obj(nil); !(best < zero) {
		t.Errorf("objective at the Sylvester X %.6g, at X = 0 %.6g: want lower", best, zero)
	}
	for k := range 8 {
		var e mat.Dense
		e.Add(x, randDense(rng, r, r, 1e-3))
		if v := obj(&e); v < best*(1-1e-12) {
			t.Errorf("perturbation %d: objective %.9g below the Sylvester X's %.9g", k, v, best)
		}
	}
}

// TestLoRAProFullMoments: LoRA-Pro's Adam keeps its moments on the
// Out×In equivalent gradient, so its state is full fine-tuning's
// 2·4 bytes per element of every adapted weight (charged to the Meter),
// not LoRA's r·(in+out).
func TestLoRAProFullMoments(t *testing.T) {
	m := refModels(1)[0]
	att := attachRef(t, m, "lora-pro", map[string]any{"rank": 4})
	meter := &nn.Meter{}
	tr := newTrainer(t, att, m.loss)
	tr.opt.Meter = meter
	tr.step(0, 2, 1e-3)
	var want int64
	for _, l := range m.targets {
		want += 8 * int64(l.Out*l.In)
	}
	if got := tr.stepper.(nn.StateSizer).StateBytes(); got != want {
		t.Errorf("StateBytes %d, want 8·Σ out·in = %d", got, want)
	}
	if meter.Current() != want {
		t.Errorf("Meter charged %d bytes, want %d", meter.Current(), want)
	}
}
