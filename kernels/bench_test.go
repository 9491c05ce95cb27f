package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// GemmShape is one benchmarked product.
type benchShape struct {
	name           string
	transA, transB bool
	m, n, k        int
}

func benchShapes() []benchShape {
	s := []benchShape{}
	for _, n := range []int{128, 256, 512, 1024} {
		s = append(s, benchShape{name: fmt.Sprintf("n=%d", n), m: n, n: n, k: n})
	}
	return append(s, ModelShapes()...)
}

func BenchmarkSgemm(b *testing.B) {
	for _, s := range benchShapes() {
		b.Run(s.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			x := randSlice(r, s.m*s.k)
			y := randSlice(r, s.k*s.n)
			c := make([]float32, s.m*s.n)
			lda, ldb := s.k, s.n
			if s.transA {
				lda = s.m
			}
			if s.transB {
				ldb = s.k
			}
			for b.Loop() {
				Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, c, s.n)
			}
			b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
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
					sgemmPacked(kern, false, false, n, n, n, 1, x, n, y, n, 0, c, n)
				}
				b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
