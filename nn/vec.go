package nn

import "math"

// The element-wise and per-row loops of the ops. Each is the reference
// loop a vector kernel may replace; all are sequential, so their results do
// not depend on scheduling.

// axpy: y += a·x.
func axpy(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

// addTo: y += x.
func addTo(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += v
	}
}

// add: dst = x + y.
func add(dst, x, y []float32) {
	y, dst = y[:len(x)], dst[:len(x)]
	for i, v := range x {
		dst[i] = v + y[i]
	}
}

// mulAdd: dst += x·y element-wise.
func mulAdd(dst, x, y []float32) {
	y, dst = y[:len(x)], dst[:len(x)]
	for i, v := range x {
		dst[i] += v * y[i]
	}
}

// scaleTo: dst = a·x.
func scaleTo(dst []float32, a float32, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = a * v
	}
}

// dot returns Σ x·y accumulated in float64.
func dot(x, y []float32) float64 {
	y = y[:len(x)]
	var s float64
	for i, v := range x {
		s += float64(v) * float64(y[i])
	}
	return s
}

// sum returns Σ x accumulated in float64.
func sum(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return s
}

// softmaxRow: dst = softmax(x), computed stably; dst may alias x.
func softmaxRow(dst, x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	var s float64
	for i, v := range x {
		e := exp32(v - m)
		dst[i] = e
		s += float64(e)
	}
	inv := float32(1 / s)
	for i := range x {
		dst[i] *= inv
	}
}

// logSumExpRow returns log Σ exp(x).
func logSumExpRow(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	if math.IsInf(float64(m), -1) {
		return m
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v - m))
	}
	return m + float32(math.Log(s))
}

func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

const (
	geluC = 0.7978845608028654 // √(2/π)
	geluK = 0.044715
)

// geluRow: dst = x·½(1+tanh(√(2/π)(x+0.044715x³))), torch's
// approximate="tanh"; th, when non-nil, receives the tanh for backward.
func geluRow(dst, th, x []float32) {
	for i, v := range x {
		xv := float64(v)
		t := math.Tanh(geluC * (xv + geluK*xv*xv*xv))
		dst[i] = float32(0.5 * xv * (1 + t))
		if th != nil {
			th[i] = float32(t)
		}
	}
}

// geluBackRow: dx += dy·gelu'(x), given th = tanh(√(2/π)(x+0.044715x³)).
func geluBackRow(dx, dy, x, th []float32) {
	for i, v := range x {
		xv, t := float64(v), float64(th[i])
		d := 0.5*(1+t) + 0.5*xv*(1-t*t)*geluC*(1+3*geluK*xv*xv)
		dx[i] += dy[i] * float32(d)
	}
}
