//go:build !noasm

package kernels

import "golang.org/x/sys/cpu"

//go:noescape
func dgemmKernel6x8AVX2(kc int, a, b, c *float64, ldc int)

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		dgemmKernel = dgemmKernel6x8AVX2
	}
}
