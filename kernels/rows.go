package kernels

import "math"

// The row kernels treat a slice as a row-major matrix of len(src)/cols rows;
// len(src) must be a multiple of cols. Destinations may alias sources unless
// a doc comment says otherwise.

// SoftmaxRows writes the softmax of each row of src to dst.
//
//	for each row x, y: mx := max(x); y[j] = exp(x[j]-mx) / Σ exp(x[j]-mx)
func SoftmaxRows(dst, src []float32, cols int) {
	checkRows("SoftmaxRows", len(src), cols)
	dst = dst[:len(src)]
	for r := 0; r < len(src); r += cols {
		softmaxRow(dst[r:r+cols], src[r:r+cols])
	}
}

// Relu writes max(x, 0) to dst (len(x) elements); NaN stays NaN. dst may
// alias x.
//
//	y[i] = max(x[i], 0)
func Relu(dst, x []float32) {
	dst = dst[:len(x)]
	i := 0
	if haveAVX2 {
		reluAVX2(dst, x)
		i = len(x) &^ 7
	}
	for ; i < len(x); i++ {
		dst[i] = max(x[i], 0)
	}
}

// ReluBackwardAdd adds dy where the ReLU output y is positive to dx: the
// accumulating form of ReluBackward, for autodiff tapes that add into
// gradient buffers.
//
//	if y[i] > 0 { dx[i] += dy[i] }
func ReluBackwardAdd(dx, y, dy []float32) {
	dx, dy = dx[:len(y)], dy[:len(y)]
	i := 0
	if haveAVX2 {
		reluBackAddAVX2(dx, y, dy)
		i = len(y) &^ 7
	}
	for ; i < len(y); i++ {
		if y[i] > 0 {
			dx[i] += dy[i]
		}
	}
}

// SumRows adds the column sums of src (rows of cols) to dst (len cols): the
// bias gradient of a linear layer.
//
//	for each row x: dst[j] += x[j]
func SumRows(dst, src []float32, cols int) {
	checkRows("SumRows", len(src), cols)
	dst = dst[:cols]
	for r := 0; r < len(src); r += cols {
		Add(dst, dst, src[r:r+cols])
	}
}

func softmaxRow(y, x []float32) {
	s := expShift(y, x, Max(x))
	Scale(1/s, y)
}

// expShift writes exp(x[j]-shift) to y and returns the sum of the values
// written. y may alias x.
func expShift(y, x []float32, shift float32) float32 {
	y = y[:len(x)]
	var s float32
	j := 0
	if haveAVX2 {
		s = expShiftAVX2(y, x, shift)
		j = len(x) &^ 7
	}
	for ; j < len(x); j++ {
		e := exp32(x[j] - shift)
		y[j] = e
		s += e
	}
	return s
}

func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

func checkRows(name string, n, cols int) {
	if cols <= 0 || n%cols != 0 {
		panic("kernels: " + name + ": length is not a multiple of cols")
	}
}
