package methods

import (
	"fmt"
	"math"
	"testing"

	"peftbench/nn"
)

func init() {
	// M starts at 0: nothing random to export. The MLP's fc1 (48×24) has
	// P < Out (rope repeats the output), fc2 (40×48) P > Out (truncates).
	for _, typ := range []string{"rope", "sharing"} {
		addTorchCase(torchSpec{name: "mora-" + typ, method: "mora", opts: map[string]any{"rank": 4, "mora_type": typ},
			lr: 1e-2, clip: 0.05})
	}
}

// moraDeltaRef is the authors' get_delta_weight (peft-mora
// LoraLayer.get_delta_weight, mora_type 1 and 6), ported loop for loop in
// float64: ΔW (out×in) from M (r̂×r̂).
func moraDeltaRef(m []float32, rh, out, in int, typ string) []float64 {
	pad := 0
	if in%rh != 0 {
		pad = rh - in%rh
	}
	at := func(a, b int) float64 { return float64(m[a*rh+b]) }
	dw := make([]float64, out*in)
	switch typ {
	case "sharing": // w[:, i % in] += aw[:, i % r]; w = cat([w]*repeat)[:out]
		w := make([]float64, rh*in)
		for i := range in + pad {
			for a := range rh {
				w[a*in+i%in] += at(a, i%rh)
			}
		}
		for i := range out {
			copy(dw[i*in:(i+1)*in], w[(i%rh)*in:(i%rh+1)*in])
		}
	case "rope":
		chunks := (in + pad) / rh
		h := rh / 2
		// block(a, b) = aw2[a, b]·sin[b] + aw[a, b]·cos[b] at chunk g, with
		// aw2 = cat(aw[:, h:], −aw[:, :h]) and torch's float32 cos, sin.
		block := func(g, a, b int) float64 {
			invFreq := 1 / math.Pow(10000, float64(2*(b%h))/float64(rh))
			ang := float64(g) * invFreq
			var aw2 float64
			if b < h {
				aw2 = at(a, b+h)
			} else {
				aw2 = -at(a, b-h)
			}
			return aw2*math.Sin(ang) + at(a, b)*math.Cos(ang)
		}
		p := in + pad
		w := make([]float64, p*in) // (in+pad)×in
		for g := range chunks {
			for a := range rh {
				for b := range rh {
					col := g*rh + b
					if g == chunks-1 && b >= rh-pad { // w[i*r:, :pad] = (…)[:, r−pad:]
						col = b - (rh - pad)
					}
					w[(g*rh+a)*in+col] = block(g, a, b)
				}
			}
		}
		for i := range out { // tiled (in < out) or truncated
			copy(dw[i*in:(i+1)*in], w[(i%p)*in:(i%p+1)*in])
		}
	}
	return dw
}

// TestMoRAHighRank: after training, ΔW (Merged − W0, the forward's own
// operators applied to the identity) equals the authors' get_delta_weight
// ported independently, for both operator types, on the MLP (r̂ < In) and a
// Llama k_proj (16×32, where rope's blocks repeat); M has LoRA-r's
// parameter count (r̂² ≈ r·(in+out)) and ΔW's rank exceeds r: up to r̂ for
// sharing, min(out, in) for rope.
func TestMoRAHighRank(t *testing.T) {
	for _, typ := range []string{"rope", "sharing"} {
		for _, mi := range []int{0, 4} { // mlp, lm-llama
			m := refModels(1)[mi]
			t.Run(fmt.Sprintf("%s/%s", typ, m.name), func(t *testing.T) {
				const r = 8
				att := attachRef(t, m, "mora", map[string]any{"rank": r, "mora_type": typ})
				train(t, m, att, 3, 1e-2)
				for _, l := range m.targets[:2] {
					a := l.Adapter.(*MoRA)
					rh := a.RHat
					// |r̂ − √(r·(in+out))| ≤ ½, or ≤ 3/2 after rope's rounding down to even.
					tol := 2*rh + 1
					if typ == "rope" {
						tol = 3*rh + 3
					}
					if lora := r * (l.In + l.Out); math.Abs(float64(rh*rh-lora)) > float64(tol) {
						t.Errorf("%s: r̂² = %d, LoRA-%d has %d", l.Name, rh*rh, r, lora)
					}
					got := deltaOf(l)
					want := moraDeltaRef(a.M.Data, rh, l.Out, l.In, typ)
					var worst, scale float64
					for i, v := range want {
						worst = max(worst, math.Abs(float64(got[i])-v))
						scale = max(scale, math.Abs(v))
					}
					if scale == 0 {
						t.Fatalf("%s: ΔW = 0 after training", l.Name)
					}
					if worst > 1e-4*scale {
						t.Errorf("%s: ΔW off the authors' get_delta_weight by %.3g (max |ΔW| %.3g)", l.Name, worst, scale)
					}
					rk := hadamardRank(got, l.Out, l.In)
					if lim := min(rh, l.Out, l.In); typ == "sharing" && (rk <= r || rk > lim || 10*rk < 9*lim) {
						t.Errorf("%s: sharing rank(ΔW) = %d, want > r = %d, ≤ and near min(r̂, out, in) = %d", l.Name, rk, r, lim)
					}
					if full := min(l.Out, l.In); typ == "rope" && (rk <= rh && rh < full || 10*rk < 9*full) {
						t.Errorf("%s: rope rank(ΔW) = %d, want near min(out, in) = %d (r̂ = %d)", l.Name, rk, full, rh)
					}
				}
			})
		}
	}
}

// TestMoRADropout: dropout makes training passes random; SetTraining(nil)
// restores evaluation.
func TestMoRADropout(t *testing.T) {
	l := nn.NewLinear("fc", 48, 40, true, nn.NewRNG(1, "init"))
	att, err := Attach("mora", []*nn.Linear{l}, map[string]any{"rank": 4, "dropout": 0.5}, nn.NewRNG(1, "method"))
	if err != nil {
		t.Fatal(err)
	}
	nn.NewRNG(2, "M").FillNormal(l.Adapter.(*MoRA).M, 0, 1)
	x := nn.New(8, 48)
	nn.NewRNG(1, "x").FillNormal(x, 0, 1)
	fwd := func(g *nn.Graph) *nn.Tensor { return l.Forward(g, x) }
	full := eval(fwd)
	att.SetTraining(nn.NewRNG(1, "dropout"))
	if y1, y2 := eval(fwd), eval(fwd); relDiff(y1, full) == 0 || relDiff(y1, y2) == 0 {
		t.Error("dropout on: outputs are deterministic")
	}
	att.SetTraining(nil)
	if d := relDiff(eval(fwd), full); d != 0 {
		t.Errorf("dropout off: outputs moved by %g", d)
	}
}
