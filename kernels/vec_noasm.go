//go:build noasm || !amd64

package kernels

// haveAVX2 is false: only the pure-Go loops run.
const haveAVX2 = false

func expShiftAVX2(dst, src []float32, shift float32) float32 { panic("kernels: no AVX2") }
func geluAVX2(dst, src []float32)                            { panic("kernels: no AVX2") }
func geluBackwardAVX2(dx, x, dy []float32)                   { panic("kernels: no AVX2") }
func adamWAVX2(p, g, m, v []float32, c *[8]float32)          { panic("kernels: no AVX2") }
func axpyAVX2(alpha float32, x, y []float32)                 { panic("kernels: no AVX2") }
func dotAVX2(x, y []float32) float32                         { panic("kernels: no AVX2") }

func transpose8AVX2(dst *float32, w int, src *float32, ld int, blocks int) {
	panic("kernels: no AVX2")
}

func addAVX2(dst, x, y []float32)                  { panic("kernels: no AVX2") }
func mulAVX2(dst, x, y []float32)                  { panic("kernels: no AVX2") }
func addReluAVX2(dst, x, y []float32)              { panic("kernels: no AVX2") }
func scaleAVX2(alpha float32, x []float32) float32 { panic("kernels: no AVX2") }
func maxAVX2(alpha float32, x []float32) float32   { panic("kernels: no AVX2") }

func reluBackAVX2(dx, y, dy []float32) { panic("kernels: no AVX2") }

func reluBackAddAVX2(dx, y, dy []float32) { panic("kernels: no AVX2") }

func reluAVX2(dst, x []float32) { panic("kernels: no AVX2") }
