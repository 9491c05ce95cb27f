package methods

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/dsp/fourier"
)

// FFT helpers shared by the transform-domain methods (FourierFT, C3A).
// gonum's transforms are unnormalised in both directions, with the usual
// signs:
//
//	Coefficients: X[k] = Σ_t x[t]·e^{−2πi·kt/n}
//	Sequence:     x[t] = Σ_k X[k]·e^{+2πi·kt/n}
//
// so a round trip multiplies by n; callers fold the 1/n into their own
// scale. The real transform keeps the n/2+1 coefficients of a Hermitian
// spectrum, and its Sequence reads only the real parts of X[0] and, for
// even n, X[n/2] — exact for the spectra of real sequences and for products
// of such spectra, which is all the methods pass it. Everything is computed
// in float64 and rounded to float32 once.

// halfLen is the number of coefficients the real FFT of length n keeps.
func halfLen(n int) int { return n/2 + 1 }

// realFFT is gonum's real FFT of length n with float64 scratch for the
// float32 tensors of the graph.
type realFFT struct {
	n    int
	t    *fourier.FFT
	seq  []float64
	coef []complex128
}

func newRealFFT(n int) *realFFT {
	return &realFFT{n: n, t: fourier.NewFFT(n), seq: make([]float64, n), coef: make([]complex128, halfLen(n))}
}

// forward writes the n/2+1 coefficients of the real sequence x (float32)
// to dst.
func (f *realFFT) forward(dst []complex128, x []float32) {
	for i, v := range x {
		f.seq[i] = float64(v)
	}
	f.t.Coefficients(dst, f.seq)
}

// inverse adds s·Σ_k X[k]·e^{+2πi·kt/n} (over the whole Hermitian
// spectrum whose first half is coef) to dst.
func (f *realFFT) inverse(dst []float32, coef []complex128, s float64) {
	f.t.Sequence(f.seq, coef)
	for i, v := range f.seq {
		dst[i] += float32(s * v)
	}
}

// cmplxColumns runs gonum's complex FFT of length m down selected columns
// of a row-major m×w complex array.
type cmplxColumns struct {
	m   int
	t   *fourier.CmplxFFT
	col []complex128
}

func newCmplxColumns(m int) *cmplxColumns {
	return &cmplxColumns{m: m, t: fourier.NewCmplxFFT(m), col: make([]complex128, m)}
}

// transform replaces column q of a (row stride w) by its unnormalised
// inverse (Sequence, inv) or forward (Coefficients) transform.
func (c *cmplxColumns) transform(a []complex128, w, q int, inv bool) {
	for p := range c.m {
		c.col[p] = a[p*w+q]
	}
	if inv {
		c.t.Sequence(c.col, c.col)
	} else {
		c.t.Coefficients(c.col, c.col)
	}
	for p := range c.m {
		a[p*w+q] = c.col[p]
	}
}

// parallelMin is the work (elements touched) below which the transforms
// run on one goroutine.
const parallelMin = 1 << 14

// fftWorkers is how many goroutines split n independent transforms that
// touch work elements in all: GOMAXPROCS, at most n, one for small work.
func fftWorkers(n, work int) int {
	if work < parallelMin {
		return 1
	}
	return max(1, min(runtime.GOMAXPROCS(0), n))
}

// parallel calls fn(w, lo, hi) for w < workers on disjoint ranges covering
// [0, n), concurrently. Callers give each index work whose result does not
// depend on the others (one row's transform), so the split, which follows
// GOMAXPROCS, never changes a result.
func parallel(n, workers int, fn func(w, lo, hi int)) {
	if workers <= 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(w, lo, hi)
		}()
	}
	wg.Wait()
}
