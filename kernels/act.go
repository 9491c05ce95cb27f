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

// Erf returns erf(x) in float32 arithmetic: the rational approximation
// x·P(x²)/Q(x²) on x clamped to [−4, 4] of Eigen's and XLA's float erf,
// within 4e-7 of math.Erf over [−6, 6] (about 3 ulp of 1) and about four
// times faster than math.Erf through float64.
func Erf(a float32) float32 {
	x := min(max(a, -4), 4)
	x2 := x * x
	p := x2*-2.72614225801306e-10 + 2.77068142495902e-08
	p = p*x2 + -2.10102402082508e-06
	p = p*x2 + -5.69250639462346e-05
	p = p*x2 + -7.34990630326855e-04
	p = p*x2 + -2.95459980854025e-03
	p = p*x2 + -1.60960333262415e-02
	q := x2*-1.45660718464996e-05 + -2.13374055278905e-04
	q = q*x2 + -1.68282697438203e-03
	q = q*x2 + -7.37332916720468e-03
	q = q*x2 + -1.42647390514189e-02
	return x * p / q
}

// normCDF is Φ(x) = ½(1 + erf(x/√2)). Below x = −√2, where 1 + erf
// cancels (Φ < 0.08), it takes ½·erfc(−x/√2) in float64 instead, so that
// the tail keeps its relative accuracy.
func normCDF(x float32) float32 {
	const invSqrt2 = 0.7071067811865476
	if x < -1.4142135 {
		return float32(0.5 * math.Erfc(-float64(x)*invSqrt2))
	}
	return 0.5 * (1 + Erf(x*invSqrt2))
}

// GELUErf writes the exact GELU x·Φ(x) of src to dst (torch's
// gelu(x, approximate='none'), transformers' "gelu"), in float32 through
// Erf. dst may alias src.
//
//	y = 0.5·x·(1 + erf(x/√2))
func GELUErf(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = x * normCDF(x)
	}
}

// GELUErfBackwardAdd adds dy times the derivative of the exact GELU at x
// to dx.
//
//	dx += dy·(Φ(x) + x·exp(−x²/2)/√(2π))
func GELUErfBackwardAdd(dx, x, dy []float32) {
	const invSqrt2Pi = 0.3989422804014327 // 1/√(2π)
	dx, dy = dx[:len(x)], dy[:len(x)]
	for i, v := range x {
		pdf := float32(math.Exp(float64(-0.5*v*v))) * invSqrt2Pi
		dx[i] += dy[i] * (normCDF(v) + v*pdf)
	}
}
