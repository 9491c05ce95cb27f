package nn_test

import (
	"syscall"
	"testing"
	"time"

	"peftbench/methods"
	"peftbench/nn"
)

// attachLoRA puts LoRA (rank r, α = 2r) on every linear layer.
func attachLoRA(r int, seed uint64) func(*nn.Linear) {
	rng := nn.NewRNG(seed, "lora")
	return func(l *nn.Linear) { l.Adapter = methods.NewLoRA(l, r, float32(2*r), rng) }
}

func attachFull(l *nn.Linear) { l.Adapter = methods.NewFull(l) }

// refSetups are the engine issue's reference training steps.
func refSetups(mlpB, trB int) []struct {
	name string
	mk   func() *nn.RefTrainer
} {
	return []struct {
		name string
		mk   func() *nn.RefTrainer
	}{
		{"MLP/LoRA", func() *nn.RefTrainer { return nn.NewRefMLP(nn.RefMLPSizes, mlpB, 1, attachLoRA(16, 1)) }},
		{"MLP/Full", func() *nn.RefTrainer { return nn.NewRefMLP(nn.RefMLPSizes, mlpB, 1, attachFull) }},
		{"Transformer/LoRA", func() *nn.RefTrainer {
			return nn.NewRefTransformer(nn.RefTransformerConfig, trB, 1, attachLoRA(16, 1))
		}},
		{"Transformer/Full", func() *nn.RefTrainer {
			r := nn.NewRefTransformer(nn.RefTransformerConfig, trB, 1, attachFull)
			nn.SetTrainable(r.Model.Params(), true)
			r.Params = nn.AllParams(r.Model)
			return r
		}},
	}
}

func benchStep(b *testing.B, r *nn.RefTrainer) {
	r.Step() // warm the arena
	b.ReportAllocs()
	b.ResetTimer()
	c0, n := cpuTime(), 0
	for b.Loop() {
		r.Step()
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(n), "ms/step")
	// CPU time (all threads) is steadier than wall time on a shared machine.
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/1e3/float64(n), "cpu-ms/step")
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStep times one training step of each reference setup: MLP
// 784-256-256-10 at batch 128 and transformer d=128, 2 blocks, 4 heads,
// seq 64 at batch 16, with LoRA r=16 on all linear layers and with full
// fine-tuning, AdamW.
func BenchmarkStep(b *testing.B) {
	for _, s := range refSetups(128, 16) {
		b.Run(s.name, func(b *testing.B) { benchStep(b, s.mk()) })
	}
}

// TestStepAllocsIndependentOfBatch checks that steady-state steps reuse
// their buffers: the allocations of a step do not grow with the batch.
func TestStepAllocsIndependentOfBatch(t *testing.T) {
	small, large := refSetups(8, 1), refSetups(32, 4)
	for i := range small {
		if i%2 == 1 {
			continue // Full differs from LoRA only in which tensors train
		}
		var allocs [2]float64
		for j, s := range []func() *nn.RefTrainer{small[i].mk, large[i].mk} {
			r := s()
			r.Step()
			allocs[j] = testing.AllocsPerRun(2, func() { r.Step() })
		}
		t.Logf("%s: %v allocs/step at the small batch, %v at 4× it", small[i].name, allocs[0], allocs[1])
		if allocs[1] > allocs[0] {
			t.Errorf("%s: %v allocs/step at 4× the batch, %v at the small one", small[i].name, allocs[1], allocs[0])
		}
		if allocs[0] > 64 {
			t.Errorf("%s: %v allocs/step, want a small constant (≤ 64)", small[i].name, allocs[0])
		}
	}
}
