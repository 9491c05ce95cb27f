package kernels

import "math"

// Axpy computes y += alpha·x over len(y) elements; x must be at least as long.
//
//	for i := range y { y[i] += alpha * x[i] }
func Axpy(alpha float32, x, y []float32) {
	x = x[:len(y)]
	i := 0
	if haveAVX2 {
		axpyAVX2(alpha, x, y)
		i = len(y) &^ 7
	}
	for ; i < len(y); i++ {
		y[i] += alpha * x[i]
	}
}

// Dot returns Σ x[i]·y[i] over len(x) elements; y must be at least as long.
// The sum is taken in a fixed order, so the result depends only on the inputs.
//
//	var s float32
//	for i := range x { s += x[i] * y[i] }
func Dot(x, y []float32) float32 {
	y = y[:len(x)]
	var s float32
	i := 0
	if haveAVX2 {
		s = dotAVX2(x, y)
		i = len(x) &^ 31
	}
	for ; i < len(x); i++ {
		s += x[i] * y[i]
	}
	return s
}

// Scale computes x *= alpha in place.
//
//	for i := range x { x[i] *= alpha }
func Scale(alpha float32, x []float32) {
	i := 0
	if haveAVX2 {
		scaleAVX2(alpha, x)
		i = len(x) &^ 7
	}
	for ; i < len(x); i++ {
		x[i] *= alpha
	}
}

// Add computes dst = x + y element-wise over len(dst) elements. dst may alias
// x or y.
func Add(dst, x, y []float32) {
	x = x[:len(dst)]
	y = y[:len(dst)]
	i := 0
	if haveAVX2 {
		addAVX2(dst, x, y)
		i = len(dst) &^ 7
	}
	for ; i < len(dst); i++ {
		dst[i] = x[i] + y[i]
	}
}

// Mul computes dst = x ⊙ y element-wise over len(dst) elements. dst may alias
// x or y.
func Mul(dst, x, y []float32) {
	x = x[:len(dst)]
	y = y[:len(dst)]
	i := 0
	if haveAVX2 {
		mulAVX2(dst, x, y)
		i = len(dst) &^ 7
	}
	for ; i < len(dst); i++ {
		dst[i] = x[i] * y[i]
	}
}

// Max returns the largest element of x, −Inf for an empty x. NaN elements
// may be skipped.
func Max(x []float32) float32 {
	mx := float32(math.Inf(-1))
	i := 0
	if haveAVX2 {
		mx = maxAVX2(mx, x)
		i = len(x) &^ 7
	}
	for ; i < len(x); i++ {
		mx = max(mx, x[i])
	}
	return mx
}

// AdamW applies one AdamW update with decoupled weight decay, as
// torch.optim.AdamW does (non-amsgrad), to the parameters p given their
// gradients g and the moment buffers m and v, all of len(p). bc1 and bc2
// are the bias corrections 1−β1ᵗ and 1−β2ᵗ of step t (counted from 1).
//
//	p[i] *= 1 - lr*wd
//	m[i] = beta1*m[i] + (1-beta1)*g[i]
//	v[i] = beta2*v[i] + (1-beta2)*g[i]*g[i]
//	p[i] -= (lr/bc1) * m[i] / (sqrt(v[i])/sqrt(bc2) + eps)
func AdamW(p, g, m, v []float32, lr, beta1, beta2, eps, wd, bc1, bc2 float32) {
	g = g[:len(p)]
	m = m[:len(p)]
	v = v[:len(p)]
	decay := 1 - lr*wd
	step := lr / bc1
	rbc2 := 1 / float32(math.Sqrt(float64(bc2)))
	i := 0
	if haveAVX2 {
		c := [8]float32{decay, step, rbc2, eps, beta1, 1 - beta1, beta2, 1 - beta2}
		adamWAVX2(p, g, m, v, &c)
		i = len(p) &^ 7
	}
	for ; i < len(p); i++ {
		gi := g[i]
		mi := beta1*m[i] + (1-beta1)*gi
		vi := beta2*v[i] + (1-beta2)*gi*gi
		m[i], v[i] = mi, vi
		denom := sqrt32(vi)*rbc2 + eps
		p[i] = p[i]*decay - step*mi/denom
	}
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
