package nn

import (
	"math"

	"peftbench/kernels"
)

// The element-wise and per-row loops of the ops. Each is the reference
// loop a vector kernel may replace; all are sequential, so their results do
// not depend on scheduling.

// axpy: y += a·x.
func axpy(a float32, x, y []float32) { kernels.Axpy(a, x, y[:len(x)]) }

// addTo: y += x.
func addTo(x, y []float32) {
	y = y[:len(x)]
	kernels.Add(y, y, x)
}

// add: dst = x + y.
func add(dst, x, y []float32) { kernels.Add(dst[:len(x)], x, y) }

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
	copy(dst, x)
	kernels.Scale(a, dst)
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
	if len(x) > 0 {
		kernels.SoftmaxRows(dst[:len(x)], x, len(x))
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
// approximate="tanh".
func geluRow(dst, x []float32) { kernels.GELU(dst, x) }

// geluBackRow: dx += dy·gelu'(x), using tmp (len(x)) as scratch.
func geluBackRow(dx, dy, x, tmp []float32) {
	kernels.GELUBackward(tmp, x, dy)
	addTo(tmp, dx)
}
