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

// LogSoftmaxRows writes the log-softmax of each row of src to dst.
//
//	for each row x, y: mx := max(x); y[j] = x[j] - mx - log(Σ exp(x[j]-mx))
func LogSoftmaxRows(dst, src []float32, cols int) {
	checkRows("LogSoftmaxRows", len(src), cols)
	dst = dst[:len(src)]
	for r := 0; r < len(src); r += cols {
		x, y := src[r:r+cols], dst[r:r+cols]
		mx := Max(x)
		var s float32
		if haveAVX2 && &x[0] != &y[0] {
			s = expShift(y, x, mx) // y as scratch
		} else {
			for _, v := range x {
				s += exp32(v - mx)
			}
		}
		ls := mx + float32(math.Log(float64(s)))
		for j, v := range x {
			y[j] = v - ls
		}
	}
}

// SoftmaxRowsBackward writes the gradient of the softmax input to dx, given
// the softmax output y and its gradient dy. dx may alias dy.
//
//	for each row: d := Σ dy[j]*y[j]; dx[j] = y[j] * (dy[j] - d)
func SoftmaxRowsBackward(dx, y, dy []float32, cols int) {
	checkRows("SoftmaxRowsBackward", len(y), cols)
	dx, dy = dx[:len(y)], dy[:len(y)]
	for r := 0; r < len(y); r += cols {
		yr, dyr, dxr := y[r:r+cols], dy[r:r+cols], dx[r:r+cols]
		d := Dot(dyr, yr)
		for j := range yr {
			dxr[j] = yr[j] * (dyr[j] - d)
		}
	}
}

// LayerNormRows normalises each row of src to zero mean and unit variance
// (biased variance, as torch.nn.LayerNorm), then scales by gamma and shifts by
// beta (each of len cols; nil means 1 and 0). When mean and rstd are non-nil
// they receive each row's mean and 1/sqrt(var+eps) for the backward pass.
//
//	mu := Σ x / cols; va := Σ (x-mu)² / cols; rs := 1/sqrt(va+eps)
//	y[j] = (x[j]-mu)*rs*gamma[j] + beta[j]
func LayerNormRows(dst, mean, rstd, src, gamma, beta []float32, cols int, eps float32) {
	checkRows("LayerNormRows", len(src), cols)
	dst = dst[:len(src)]
	n := float32(cols)
	for i, r := 0, 0; r < len(src); i, r = i+1, r+cols {
		x, y := src[r:r+cols], dst[r:r+cols]
		var s float32
		for _, v := range x {
			s += v
		}
		mu := s / n
		var ss float32
		for _, v := range x {
			d := v - mu
			ss += d * d
		}
		rs := 1 / sqrt32(ss/n+eps)
		if mean != nil {
			mean[i] = mu
		}
		if rstd != nil {
			rstd[i] = rs
		}
		for j, v := range x {
			h := (v - mu) * rs
			if gamma != nil {
				h *= gamma[j]
			}
			if beta != nil {
				h += beta[j]
			}
			y[j] = h
		}
	}
}

// LayerNormRowsBackward computes the input gradient dx of LayerNormRows from
// the output gradient dy, the input x and the saved mean and rstd. It adds
// the parameter gradients to dgamma and dbeta when they are non-nil. gamma
// nil means 1. dx may alias dy.
//
//	h[j] = (x[j]-mu)*rs; g[j] = dy[j]*gamma[j]
//	dx[j] = rs * (g[j] - mean(g) - h[j]*mean(g⊙h))
//	dgamma[j] += Σrows dy[j]*h[j]; dbeta[j] += Σrows dy[j]
func LayerNormRowsBackward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma []float32, cols int) {
	checkRows("LayerNormRowsBackward", len(x), cols)
	dx, dy = dx[:len(x)], dy[:len(x)]
	n := float32(cols)
	for i, r := 0, 0; r < len(x); i, r = i+1, r+cols {
		xr, dyr, dxr := x[r:r+cols], dy[r:r+cols], dx[r:r+cols]
		mu, rs := mean[i], rstd[i]
		var sg, sgh float32
		for j, v := range xr {
			h := (v - mu) * rs
			g := dyr[j]
			if dgamma != nil {
				dgamma[j] += g * h
			}
			if dbeta != nil {
				dbeta[j] += g
			}
			if gamma != nil {
				g *= gamma[j]
			}
			sg += g
			sgh += g * h
		}
		mg, mgh := sg/n, sgh/n
		for j, v := range xr {
			h := (v - mu) * rs
			g := dyr[j]
			if gamma != nil {
				g *= gamma[j]
			}
			dxr[j] = rs * (g - mg - h*mgh)
		}
	}
}

// RMSNormRows scales each row of src by the reciprocal of its root mean
// square, then by gamma (len cols; nil means 1). When rstd is non-nil it
// receives each row's 1/sqrt(mean(x²)+eps).
//
//	rs := 1/sqrt(Σ x² / cols + eps); y[j] = x[j]*rs*gamma[j]
func RMSNormRows(dst, rstd, src, gamma []float32, cols int, eps float32) {
	checkRows("RMSNormRows", len(src), cols)
	dst = dst[:len(src)]
	n := float32(cols)
	for i, r := 0, 0; r < len(src); i, r = i+1, r+cols {
		x, y := src[r:r+cols], dst[r:r+cols]
		rs := 1 / sqrt32(Dot(x, x)/n+eps)
		if rstd != nil {
			rstd[i] = rs
		}
		for j, v := range x {
			h := v * rs
			if gamma != nil {
				h *= gamma[j]
			}
			y[j] = h
		}
	}
}

// RMSNormRowsBackward computes the input gradient dx of RMSNormRows from the
// output gradient dy, the input x and the saved rstd, and adds the gain
// gradient to dgamma when it is non-nil. gamma nil means 1. dx may alias dy.
//
//	h[j] = x[j]*rs; g[j] = dy[j]*gamma[j]
//	dx[j] = rs * (g[j] - h[j]*mean(g⊙h)); dgamma[j] += Σrows dy[j]*h[j]
func RMSNormRowsBackward(dx, dgamma, dy, x, rstd, gamma []float32, cols int) {
	checkRows("RMSNormRowsBackward", len(x), cols)
	dx, dy = dx[:len(x)], dy[:len(x)]
	n := float32(cols)
	for i, r := 0, 0; r < len(x); i, r = i+1, r+cols {
		xr, dyr, dxr := x[r:r+cols], dy[r:r+cols], dx[r:r+cols]
		rs := rstd[i]
		var sgh float32
		for j, v := range xr {
			h := v * rs
			g := dyr[j]
			if dgamma != nil {
				dgamma[j] += g * h
			}
			if gamma != nil {
				g *= gamma[j]
			}
			sgh += g * h
		}
		mgh := sgh / n
		for j, v := range xr {
			h := v * rs
			g := dyr[j]
			if gamma != nil {
				g *= gamma[j]
			}
			dxr[j] = rs * (g - h*mgh)
		}
	}
}

// AddBias writes src plus bias (len cols) broadcast over rows to dst.
//
//	y[j] = x[j] + bias[j]
func AddBias(dst, src, bias []float32, cols int) {
	checkRows("AddBias", len(src), cols)
	dst = dst[:len(src)]
	bias = bias[:cols]
	for r := 0; r < len(src); r += cols {
		Add(dst[r:r+cols], src[r:r+cols], bias)
	}
}

// AddBiasRelu writes max(src + bias, 0) to dst, bias (len cols) broadcast
// over rows. A nil bias means zero.
//
//	y[j] = max(x[j] + bias[j], 0)
func AddBiasRelu(dst, src, bias []float32, cols int) {
	checkRows("AddBiasRelu", len(src), cols)
	dst = dst[:len(src)]
	if bias != nil {
		bias = bias[:cols]
	}
	for r := 0; r < len(src); r += cols {
		x, y := src[r:r+cols], dst[r:r+cols]
		j := 0
		if haveAVX2 && bias != nil {
			addReluAVX2(y, x, bias)
			j = cols &^ 7
		}
		for ; j < cols; j++ {
			v := x[j]
			if bias != nil {
				v += bias[j]
			}
			y[j] = max(v, 0)
		}
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

// ReluBackward writes dy where the ReLU output y is positive, else 0, to dx.
// dx may alias dy.
//
//	dx[i] = dy[i] if y[i] > 0 else 0
func ReluBackward(dx, y, dy []float32) {
	dx, dy = dx[:len(y)], dy[:len(y)]
	i := 0
	if haveAVX2 {
		reluBackAVX2(dx, y, dy)
		i = len(y) &^ 7
	}
	for ; i < len(y); i++ {
		if y[i] > 0 {
			dx[i] = dy[i]
		} else {
			dx[i] = 0
		}
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
