package methods

import (
	"math"
	"slices"
	"testing"

	"peftbench/nn"
)

func TestNewLoRAInit(t *testing.T) {
	l := nn.NewLinear("fc1", 64, 32, true, nn.NewRNG(1, "init"))
	m := NewLoRA(l, 8, 16, nn.NewRNG(1, "lora"))
	if m.Scale != 2 {
		t.Errorf("scale %v, want α/r = 2", m.Scale)
	}
	if got := m.A.Shape; got[0] != 8 || got[1] != 64 {
		t.Errorf("A shape %v, want [8 64]", got)
	}
	if got := m.B.Shape; got[0] != 32 || got[1] != 8 {
		t.Errorf("B shape %v, want [32 8]", got)
	}
	bound := float32(1 / math.Sqrt(64)) // kaiming_uniform_(a=√5)
	var hi float32
	for _, v := range m.A.Data {
		hi = max(hi, v, -v)
	}
	if hi >= bound || hi < 0.9*bound {
		t.Errorf("max |A| = %v, want just under %v", hi, bound)
	}
	for _, v := range m.B.Data {
		if v != 0 {
			t.Fatal("B is not zero")
		}
	}
	if n := nn.CountParams(m.Params()); n != m.TrainableParams(l) || n != 8*(64+32) {
		t.Errorf("%d trainable parameters, formula %d, want r·(in+out) = %d", n, m.TrainableParams(l), 8*(64+32))
	}
	if l.Weight.Grad != nil || l.Bias.Grad != nil {
		t.Error("LoRA made the base layer trainable")
	}
}

// TestLoRAForwardMatchesMerged checks the fused forward against the dense
// merged weight W0 + s·B·A.
func TestLoRAForwardMatchesMerged(t *testing.T) {
	rng := nn.NewRNG(2, "init")
	l := nn.NewLinear("fc1", 12, 9, true, rng)
	m := NewLoRA(l, 4, 8, rng)
	rng.FillNormal(m.B, 0, 1)
	l.Adapter = m
	x := nn.New(5, 12)
	rng.FillNormal(x, 0, 1)
	g := &nn.Graph{NoGrad: true}
	y := l.Forward(g, x)
	w := l.Merged()
	for i := range 5 {
		for j := range 9 {
			want := float64(l.Bias.Data[j])
			for k := range 12 {
				want += float64(x.Data[i*12+k]) * float64(w[j*12+k])
			}
			if got := float64(y.Data[i*9+j]); math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
				t.Fatalf("y[%d,%d] = %v, merged weight gives %v", i, j, got, want)
			}
		}
	}
}

func TestFull(t *testing.T) {
	l := nn.NewLinear("head", 6, 4, true, nn.NewRNG(1, "init"))
	f := NewFull(l)
	l.Adapter = f
	if l.Weight.Grad == nil || l.Bias.Grad == nil {
		t.Fatal("Full left the layer frozen")
	}
	ps := f.Params()
	if n := nn.CountParams(ps); n != f.TrainableParams(l) || n != 6*4+4 {
		t.Errorf("%d trainable parameters, formula %d, want 28", n, f.TrainableParams(l))
	}
	if !ps[0].Decay || ps[1].Decay {
		t.Errorf("weight decay flags %v, %v; want the weight decayed and the bias not", ps[0].Decay, ps[1].Decay)
	}
	l.Weight.Data[0] += 1
	if d := l.Merged()[0] - f.Base[0]; d != 1 {
		t.Errorf("merged − base = %v, want the update 1", d)
	}
}

// TestPEFTFactors: W0 + s·B'·A' from PEFTFactors equals Merged for plain
// LoRA (rank r, the factors themselves) and for the residual methods
// (PiSSA, OLoRA: rank 2r, [A; A0] and [B, −B0]), after the factors have
// moved from their initial values. Catches a conversion that drops the
// −B0·A0 half or concatenates B0 with the wrong sign or layout.
func TestPEFTFactors(t *testing.T) {
	for _, tc := range []struct {
		method string
		rank   int
	}{{"lora", 3}, {"rslora", 3}, {"pissa", 6}, {"olora", 6}} {
		t.Run(tc.method, func(t *testing.T) {
			rng := nn.NewRNG(1, "w")
			l := nn.NewLinear("fc", 7, 5, false, rng)
			att, err := Attach(tc.method, []*nn.Linear{l}, map[string]any{"rank": 3, "alpha": 5}, nn.NewRNG(2, "m"))
			if err != nil {
				t.Fatal(err)
			}
			lo := l.Adapter.(*LoRA)
			for _, p := range att.Params() { // move away from the initial factors
				d := p.T.Clone()
				rng.FillNormal(d, 0, 0.1)
				for i := range p.T.Data {
					p.T.Data[i] += d.Data[i]
				}
			}
			a, b, r := lo.PEFTFactors()
			if r != tc.rank || len(a) != r*l.In || len(b) != l.Out*r {
				t.Fatalf("rank %d, A %d values, B %d; want rank %d", r, len(a), len(b), tc.rank)
			}
			w := slices.Clone(l.Weight.Data)
			addLowRank(w, b, a, l.Out, r, l.In, float64(lo.Scale))
			if d := relDiff(w, l.Merged()); d > 1e-6 {
				t.Errorf("W0 + s·B'A' differs from Merged by %.3g", d)
			}
		})
	}
}
