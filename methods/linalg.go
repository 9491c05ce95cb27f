package methods

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// dense converts a row-major float32 matrix to float64.
func dense(w []float32, rows, cols int) *mat.Dense {
	d := make([]float64, len(w))
	for i, v := range w {
		d[i] = float64(v)
	}
	return mat.NewDense(rows, cols, d)
}

// svd is a thin SVD w = U·diag(S)·Vᵀ of a rows×cols float32 matrix in
// float64: U (rows×k), S (k, descending), V (cols×k), k = min(rows, cols).
//
// Singular vectors are defined up to a joint sign flip of (uᵢ, vᵢ); svd
// fixes it so that the entry of largest magnitude of each uᵢ is positive
// (the first such entry on a tie). Methods whose training depends on the
// signs (LoRA-XS's R between the factors, LoRA-GA's A and B from different
// triplets) are then reproducible across LAPACK implementations, and a
// cross-check applies the same rule to its own decomposition.
func svd(w []float32, rows, cols int) (u *mat.Dense, s []float64, v *mat.Dense, err error) {
	return svd64(dense(w, rows, cols))
}

// svd64 is svd of a float64 matrix, with the same sign rule.
func svd64(w *mat.Dense) (u *mat.Dense, s []float64, v *mat.Dense, err error) {
	rows, cols := w.Dims()
	var f mat.SVD
	if !f.Factorize(w, mat.SVDThin) {
		return nil, nil, nil, fmt.Errorf("SVD of a %d×%d matrix did not converge", rows, cols)
	}
	u, v = new(mat.Dense), new(mat.Dense)
	f.UTo(u)
	f.VTo(v)
	_, k := u.Dims()
	for p := range k {
		big, at := 0.0, 0
		for i := range rows {
			if a := math.Abs(u.At(i, p)); a > big {
				big, at = a, i
			}
		}
		if u.At(at, p) < 0 {
			for i := range rows {
				u.Set(i, p, -u.At(i, p))
			}
			for j := range cols {
				v.Set(j, p, -v.At(j, p))
			}
		}
	}
	return u, f.Values(nil), v, nil
}

// qr is a reduced QR factorisation w = Q·R of a rows×cols float32 matrix in
// float64, like torch.linalg.qr: Q (rows×k) with orthonormal columns, R
// (k×cols) upper trapezoidal, k = min(rows, cols). For a wide matrix it
// factors the leading square block and sets R = Qᵀ·w.
func qr(w []float32, rows, cols int) (q, r *mat.Dense) {
	a := dense(w, rows, cols)
	k := min(rows, cols)
	var f mat.QR
	f.Factorize(a.Slice(0, rows, 0, k))
	var qf mat.Dense
	f.QTo(&qf)
	q = mat.DenseCopyOf(qf.Slice(0, rows, 0, k))
	r = new(mat.Dense)
	r.Mul(q.T(), a)
	return q, r
}

// toF32 copies a float64 matrix into dst (row-major).
func toF32(dst []float32, m mat.Matrix) {
	rows, cols := m.Dims()
	for i := range rows {
		for j := range cols {
			dst[i*cols+j] = float32(m.At(i, j))
		}
	}
}
