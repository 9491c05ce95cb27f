package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func BenchmarkSgemm(b *testing.B) {
	for _, s := range PerfShapes() {
		b.Run(s.Name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			x := randSlice(r, s.M*s.K)
			y := randSlice(r, s.K*s.N)
			c := make([]float32, s.M*s.N)
			lda, ldb := s.K, s.N
			if s.TransA {
				lda = s.M
			}
			if s.TransB {
				ldb = s.K
			}
			for b.Loop() {
				Sgemm(s.TransA, s.TransB, s.M, s.N, s.K, 1, x, lda, y, ldb, 0, c, s.N)
			}
			b.ReportMetric(2*float64(s.M)*float64(s.N)*float64(s.K)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkKernels(b *testing.B) {
	for _, kern := range supportedKernels {
		for _, n := range []int{256, 512, 1024} {
			b.Run(fmt.Sprintf("%s/n=%d", kern.name, n), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				x, y, c := randSlice(r, n*n), randSlice(r, n*n), make([]float32, n*n)
				for b.Loop() {
					sgemmPacked(kern, false, false, n, n, n, 1, x, n, y, n, 0, c, n, nil)
				}
				b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func BenchmarkVec(b *testing.B) {
	const n = 1 << 16
	r := rand.New(rand.NewPCG(1, 1))
	x, y, z, w := randSlice(r, n), randSlice(r, n), make([]float32, n), make([]float32, n)
	for _, bm := range []struct {
		name string
		f    func()
	}{
		{"Axpy", func() { Axpy(0.5, x, y) }},
		{"Dot", func() { Dot(x, y) }},
		{"GELU", func() { GELU(z, x) }},
		{"GELUBackward", func() { GELUBackward(z, x, y) }},
		{"SoftmaxRows/64", func() { SoftmaxRows(z, x, 64) }},
		{"AdamW", func() { AdamW(z, x, y, w, 1e-3, 0.9, 0.999, 1e-8, 0.01, 0.1, 0.001) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for i := range w {
				w[i] = 1
			}
			for b.Loop() {
				bm.f()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
		})
	}
}

// BenchmarkMicroKernel times each micro-kernel alone on panels held in
// cache: the ceiling for Sgemm on one core.
func BenchmarkMicroKernel(b *testing.B) {
	for _, kern := range supportedKernels {
		b.Run(kern.name, func(b *testing.B) {
			const kc = 256
			r := rand.New(rand.NewPCG(1, 1))
			pa, pb := randSlice(r, kern.mr*kc), randSlice(r, kc*kern.nr)
			c := make([]float32, kern.mr*kern.nr)
			for b.Loop() {
				kern.fn(kc, &pa[0], &pb[0], &c[0], kern.nr, 1, 1)
			}
			b.ReportMetric(2*float64(kern.mr*kern.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
