package kernels

import "math"

// GELU constants of the tanh approximation, as torch's approximate='tanh'.
const (
	geluBeta  = 0.7978845608028654 // sqrt(2/π)
	geluKappa = 0.044715
)

// GELU writes the tanh-approximated GELU of src to dst (torch's
// gelu(x, approximate='tanh')). dst may alias src.
//
//	y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
func GELU(dst, src []float32) {
	dst = dst[:len(src)]
	i := 0
	if haveAVX2 {
		geluAVX2(dst, src)
		i = len(src) &^ 7
	}
	for ; i < len(src); i++ {
		x := src[i]
		t := tanh32(geluBeta * (x + geluKappa*x*x*x))
		dst[i] = 0.5 * x * (1 + t)
	}
}

// GELUBackward writes dy times the derivative of GELU at x to dx. dx may
// alias dy.
//
//	u = √(2/π)·(x + 0.044715·x³); t = tanh(u)
//	dx = dy·(0.5·(1+t) + 0.5·x·(1−t²)·√(2/π)·(1 + 3·0.044715·x²))
func GELUBackward(dx, x, dy []float32) {
	dx, dy = dx[:len(x)], dy[:len(x)]
	i := 0
	if haveAVX2 {
		geluBackwardAVX2(dx, x, dy)
		i = len(x) &^ 7
	}
	for ; i < len(x); i++ {
		xv := x[i]
		x2 := xv * xv
		t := tanh32(geluBeta * (xv + geluKappa*x2*xv))
		d := 0.5*(1+t) + 0.5*xv*(1-t*t)*geluBeta*(1+3*geluKappa*x2)
		dx[i] = dy[i] * d
	}
}

func tanh32(x float32) float32 { return float32(math.Tanh(float64(x))) }
