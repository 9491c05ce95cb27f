package kernels

import (
	"runtime"
	"sync"
)

// dgemmKernel is the float64 micro-kernel: C[0:6, 0:8] += A·B for a packed
// 6×kc panel of A and a packed kc×8 panel of B. It is nil without
// AVX2+FMA (or under the noasm tag); Dgemm then runs its reference loop.
var dgemmKernel func(kc int, a, b, c *float64, ldc int)

const (
	dgemmMR = 6    // rows of a micro-tile
	dgemmNR = 8    // columns of a micro-tile
	dgemmKC = 256  // depth of a packed block: A strip 12 KB, B strip 16 KB
	dgemmMC = 96   // rows of a packed A block (16 strips)
	dgemmNC = 256  // columns of one work item (32 strips)
	dgemmSm = 4096 // m·n·k below which packing does not pay
)

// DgemmFast reports whether Dgemm has an assembly micro-kernel on this
// machine; without one it is a plain loop, slower than gonum's.
func DgemmFast() bool { return dgemmKernel != nil }

// Dgemm computes C = alpha·op(A)·op(B) + beta·C for row-major float64
// matrices with the conventions of Sgemm (op(A) is m×k, op(B) k×n; with
// beta == 0 C is not read). It exists for the float64 linear algebra of
// the spectral analysis, whose pure-Go GEMM runs at a fifth of the
// machine's speed. With the AVX2 kernel it packs A and B and works on
// blocks of C in parallel; each element is computed by one goroutine in
// a fixed order, so results do not depend on GOMAXPROCS.
func Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	checkGemmArgs("Dgemm", transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
	if k == 0 || alpha == 0 {
		return
	}
	if dgemmKernel == nil || m*n*k < dgemmSm {
		dgemmRef(transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc)
		return
	}
	strips := (n + dgemmNR - 1) / dgemmNR
	rowBlocks := (m + dgemmMC - 1) / dgemmMC
	colBlocks := (n + dgemmNC - 1) / dgemmNC
	items := rowBlocks * colBlocks
	workers := min(runtime.GOMAXPROCS(0), items)
	// One buffer: packed B, then a packed A block per worker. Packing
	// writes every element a kernel reads, so it is not cleared.
	// A worker's part: its packed A block, then its edge tile (a tile on
	// the stack would escape through the kernel's func value).
	const part = dgemmMC*dgemmKC + dgemmMR*dgemmNR
	bufp := dgemmBuf(dgemmKC*strips*dgemmNR + workers*part)
	defer dgemmBufs.Put(bufp)
	bp := (*bufp)[:dgemmKC*strips*dgemmNR]
	for p0 := 0; p0 < k; p0 += dgemmKC {
		kc := min(dgemmKC, k-p0)
		packDB(transB, b, ldb, p0, kc, n, bp)
		if workers == 1 {
			// One block of C (every product up to 96×256): no goroutine,
			// the same tiles in the same order.
			dgemmWorker(0, 1, items, colBlocks, transA, m, n, p0, kc, alpha, a, lda, bp, (*bufp)[len(bp):][:part], c, ldc)
			continue
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				off := len(bp) + w*part
				dgemmWorker(w, workers, items, colBlocks, transA, m, n, p0, kc, alpha, a, lda, bp, (*bufp)[off:off+part], c, ldc)
			}()
		}
		wg.Wait()
	}
}

// dgemmWorker computes worker w's work items (blocks of C) for the depth
// block p0…p0+kc, packing A into the start of buf (the rest is the edge
// tile); bp holds the packed B.
func dgemmWorker(w, workers, items, colBlocks int, transA bool, m, n, p0, kc int, alpha float64, a []float64, lda int, bp, buf []float64, c []float64, ldc int) {
	ap, tile := buf[:dgemmMC*dgemmKC], buf[dgemmMC*dgemmKC:][:dgemmMR*dgemmNR]
	for it := w; it < items; it += workers {
		i0, j0 := (it/colBlocks)*dgemmMC, (it%colBlocks)*dgemmNC
		mc, nc := min(dgemmMC, m-i0), min(dgemmNC, n-j0)
		packDA(transA, a, lda, i0, mc, p0, kc, alpha, ap)
		for t := 0; t*dgemmMR < mc; t++ {
			rows := min(dgemmMR, mc-t*dgemmMR)
			pa := &ap[t*kc*dgemmMR]
			for s := j0 / dgemmNR; s*dgemmNR < j0+nc; s++ {
				cols := min(dgemmNR, n-s*dgemmNR)
				pb := &bp[s*kc*dgemmNR]
				ci := (i0+t*dgemmMR)*ldc + s*dgemmNR
				if rows == dgemmMR && cols == dgemmNR {
					dgemmKernel(kc, pa, pb, &c[ci], ldc)
					continue
				}
				clear(tile)
				dgemmKernel(kc, pa, pb, &tile[0], dgemmNR)
				for r := range rows {
					for j := range cols {
						c[ci+r*ldc+j] += tile[r*dgemmNR+j]
					}
				}
			}
		}
	}
}

// dgemmBufs recycles Dgemm's packing buffers: LAPACK calls it many times
// per decomposition.
var dgemmBufs sync.Pool

func dgemmBuf(n int) *[]float64 {
	if p, ok := dgemmBufs.Get().(*[]float64); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float64, n)
	return &s
}

// packDB packs rows p0…p0+kc of op(B) into strips of dgemmNR columns,
// each kc×dgemmNR row-major, zero past column n.
func packDB(trans bool, b []float64, ldb, p0, kc, n int, bp []float64) {
	for s := 0; s*dgemmNR < n; s++ {
		dst := bp[s*kc*dgemmNR : (s+1)*kc*dgemmNR]
		j0 := s * dgemmNR
		cols := min(dgemmNR, n-j0)
		switch {
		case !trans && cols == dgemmNR: // whole rows of 8, copied as arrays
			for p := range kc {
				*(*[dgemmNR]float64)(dst[p*dgemmNR:]) = *(*[dgemmNR]float64)(b[(p0+p)*ldb+j0:])
			}
		case !trans:
			for p := range kc {
				row := dst[p*dgemmNR : (p+1)*dgemmNR]
				copy(row[:cols], b[(p0+p)*ldb+j0:])
				clear(row[cols:])
			}
		default:
			for p := range kc {
				row := dst[p*dgemmNR : (p+1)*dgemmNR]
				for j := range cols {
					row[j] = b[(j0+j)*ldb+p0+p]
				}
				clear(row[cols:])
			}
		}
	}
}

// packDA packs alpha times rows i0…i0+mc, columns p0…p0+kc of op(A) into
// strips of dgemmMR rows, each kc×dgemmMR (one column of the strip per k
// step), zero past the last row.
func packDA(trans bool, a []float64, lda, i0, mc, p0, kc int, alpha float64, ap []float64) {
	for t := 0; t*dgemmMR < mc; t++ {
		dst := ap[t*kc*dgemmMR : (t+1)*kc*dgemmMR]
		r0 := i0 + t*dgemmMR
		rows := min(dgemmMR, i0+mc-r0)
		if trans {
			for p := range kc {
				col := dst[p*dgemmMR : (p+1)*dgemmMR]
				for r, v := range a[(p0+p)*lda+r0:][:rows] {
					col[r] = alpha * v
				}
				clear(col[rows:])
			}
			continue
		}
		if rows == dgemmMR { // six rows read in step along k
			a0, a1, a2 := a[r0*lda+p0:][:kc], a[(r0+1)*lda+p0:][:kc], a[(r0+2)*lda+p0:][:kc]
			a3, a4, a5 := a[(r0+3)*lda+p0:][:kc], a[(r0+4)*lda+p0:][:kc], a[(r0+5)*lda+p0:][:kc]
			for p := range kc {
				col := dst[p*dgemmMR : (p+1)*dgemmMR : (p+1)*dgemmMR]
				col[0], col[1], col[2] = alpha*a0[p], alpha*a1[p], alpha*a2[p]
				col[3], col[4], col[5] = alpha*a3[p], alpha*a4[p], alpha*a5[p]
			}
			continue
		}
		for p := range kc {
			col := dst[p*dgemmMR : (p+1)*dgemmMR]
			for r := range rows {
				col[r] = alpha * a[(r0+r)*lda+p0+p]
			}
			clear(col[rows:])
		}
	}
}

// dgemmRef adds alpha·op(A)·op(B) to C.
func dgemmRef(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				var av, bv float64
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			c[i*ldc+j] += alpha * s
		}
	}
}
