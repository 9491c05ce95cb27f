//go:build !noasm

package kernels

import "golang.org/x/sys/cpu"

//go:generate go run gen_asm.go

//go:noescape
func sgemmKernel6x16AVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernel12x32AVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernel16x16AVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernel6x16AVX2Direct(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernel12x32AVX512Direct(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernel16x16AVX512Direct(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)

var (
	kernelAVX512Narrow = &microKernel{name: "avx512-16x16", mr: 16, nr: 16, fn: sgemmKernel16x16AVX512, direct: sgemmKernel16x16AVX512Direct}
	kernelAVX2         = &microKernel{name: "avx2-6x16", mr: 6, nr: 16, fn: sgemmKernel6x16AVX2, direct: sgemmKernel6x16AVX2Direct}
	kernelAVX512       = &microKernel{name: "avx512-12x32", mr: 12, nr: 32, fn: sgemmKernel12x32AVX512, direct: sgemmKernel12x32AVX512Direct}
)

func init() {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		kernelWide, kernelNarrow = kernelAVX512, kernelAVX512Narrow
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		kernelWide, kernelNarrow = kernelAVX2, kernelAVX2
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		supportedKernels = append(supportedKernels, kernelAVX2)
	}
	if cpu.X86.HasAVX512F {
		supportedKernels = append(supportedKernels, kernelAVX512, kernelAVX512Narrow)
	}
}
