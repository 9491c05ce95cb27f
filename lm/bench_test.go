package lm

import (
	"testing"
	"time"

	"peftbench/nn"
)

// pythia14m is a Pythia-14m-shaped configuration (6 layers, width 128, 4
// heads, FFN 512, padded vocabulary 50304, partial rotary 0.25).
func pythia14m() *Config {
	return &Config{ModelType: NeoX, Vocab: 50304, Dim: 128, Layers: 6, Heads: 4, KVHeads: 4, HeadDim: 32,
		FFN: 512, MaxPos: 2048, NormEps: 1e-5, Act: "gelu", RopeTheta: 10000, RotaryDims: 8,
		ParallelResidual: true, QKVBias: true, OBias: true, MLPBias: true, ScaleAttn: true}
}

// BenchmarkLoRAStep times one LoRA training step (forward, chunked loss,
// backward, AdamW with clipping) on a random Pythia-14m-shaped model, rank
// 8 on query_key_value (HF PEFT's default target for GPT-NeoX), batch 8 ×
// seq 128, and reports tokens/s and the graph's held bytes.
func BenchmarkLoRAStep(b *testing.B) {
	m := newModel(pythia14m())
	rng := nn.NewRNG(1, "bench")
	for _, e := range m.entries {
		rng.FillNormal(e.t, 0, 0.02)
	}
	var params []nn.ParamRef
	for _, l := range m.Layers {
		ad := &lora{a: nn.Param("a", 8, l.QKV.In), b: nn.Param("b", l.QKV.Out, 8)}
		rng.FillNormal(ad.a, 0, 0.02)
		l.QKV.Adapter = ad
		params = append(params, ad.Params()...)
	}
	batch, seq := 8, 128
	ids := make([]int, batch*seq)
	for i := range ids {
		ids[i] = rng.Intn(50277)
	}
	opt := nn.NewAdamW()
	g := nn.NewGraph()
	step := func() {
		g.Reset()
		nn.ZeroGrads(params)
		g.Backward(m.Loss(g, ids, ids, batch, seq))
		nn.ClipGradNorm(params, 1)
		opt.Step(params, 1e-4)
	}
	step() // warm the arena
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		step()
	}
	b.ReportMetric(float64(batch*seq*b.N)/time.Since(start).Seconds(), "tokens/s")
	b.ReportMetric(float64(g.HeldBytes())/(1<<20), "graph-MiB")
}
