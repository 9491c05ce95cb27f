//go:build !noasm

package kernels

import "golang.org/x/sys/cpu"

// haveAVX2 says the AVX2+FMA vector kernels of vec_amd64.s may run. They
// handle whole groups of 8 (dot: 32) elements; Go loops finish the tail.
var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func expShiftAVX2(dst, src []float32, shift float32) float32

//go:noescape
func geluAVX2(dst, src []float32)

//go:noescape
func geluBackwardAVX2(dx, x, dy []float32)

//go:noescape
func adamWAVX2(p, g, m, v []float32, c *[8]float32)

//go:noescape
func axpyAVX2(alpha float32, x, y []float32)

//go:noescape
func dotAVX2(x, y []float32) float32

//go:noescape
func transpose8AVX2(dst *float32, w int, src *float32, ld int, blocks int)

//go:noescape
func addAVX2(dst, x, y []float32)

//go:noescape
func mulAVX2(dst, x, y []float32)

//go:noescape
func addReluAVX2(dst, x, y []float32)

//go:noescape
func scaleAVX2(alpha float32, x []float32) float32

//go:noescape
func maxAVX2(alpha float32, x []float32) float32

//go:noescape
func reluBackAVX2(dx, y, dy []float32)

//go:noescape
func reluBackAddAVX2(dx, y, dy []float32)

//go:noescape
func reluAVX2(dst, x []float32)
