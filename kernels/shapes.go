package kernels

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Shape is one SGEMM problem: op(A) is M×K, op(B) is K×N.
type Shape struct {
	Name           string // "n=1024", "mlp/fc1", …
	TransA, TransB bool
	M, N, K        int
}

// PerfShapes lists the products `bench perf` times: square n = 128…1024,
// then those of one training step of the reference models (MLP
// 784-256-256-10 at batch 128; transformer d=128, seq 64, batch 16, 4 heads;
// LoRA r=16). ci/perf_ref.py times the same list with numpy.
func PerfShapes() []Shape {
	var s []Shape
	for _, n := range []int{128, 256, 512, 1024} {
		s = append(s, Shape{Name: fmt.Sprintf("n=%d", n), M: n, N: n, K: n})
	}
	return append(s,
		Shape{Name: "mlp/fc1", TransB: true, M: 128, N: 256, K: 784},
		Shape{Name: "mlp/fc2", TransB: true, M: 128, N: 256, K: 256},
		Shape{Name: "mlp/fc2.dx", M: 128, N: 256, K: 256},
		Shape{Name: "mlp/fc1.dw", TransA: true, M: 256, N: 784, K: 128},
		Shape{Name: "mlp/lora.xa", TransB: true, M: 128, N: 16, K: 784},
		Shape{Name: "mlp/lora.b", TransB: true, M: 128, N: 256, K: 16},
		Shape{Name: "tf/qkv", TransB: true, M: 1024, N: 128, K: 128},
		Shape{Name: "tf/mlp.up", TransB: true, M: 1024, N: 512, K: 128},
		Shape{Name: "tf/mlp.down", TransB: true, M: 1024, N: 128, K: 512},
		Shape{Name: "tf/attn.scores", TransB: true, M: 64, N: 64, K: 32},
	)
}

// MeasureSgemm returns the GFLOP/s of Sgemm (alpha 1, beta 0) on s: the best
// of three rounds, each repeating the product for at least minTime, since
// the machine may be shared.
func MeasureSgemm(s Shape, minTime time.Duration) float64 {
	r := rand.New(rand.NewPCG(1, 1))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
	a, b, c := fill(s.M*s.K), fill(s.K*s.N), make([]float32, s.M*s.N)
	lda, ldb := s.K, s.N
	if s.TransA {
		lda = s.M
	}
	if s.TransB {
		ldb = s.K
	}
	run := func(reps int) time.Duration {
		t0 := time.Now()
		for range reps {
			Sgemm(s.TransA, s.TransB, s.M, s.N, s.K, 1, a, lda, b, ldb, 0, c, s.N)
		}
		return time.Since(t0)
	}
	run(1)
	reps := 1
	best := time.Duration(1<<63 - 1)
	for {
		d := run(reps)
		best = min(best, d/time.Duration(reps))
		if d >= minTime {
			break
		}
		reps *= 2
	}
	for range 2 {
		best = min(best, run(reps)/time.Duration(reps))
	}
	return 2 * float64(s.M) * float64(s.N) * float64(s.K) / best.Seconds() / 1e9
}
