package kernels

import (
	"fmt"
	"runtime"
	"sync"
)

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(X) is X or Xᵀ as transA and transB say. op(A) is m×k, op(B) is k×n and
// C is m×n; lda, ldb and ldc are the row strides of A, B and C as stored.
// The reference loop is
//
//	for i := 0; i < m; i++ {
//		for j := 0; j < n; j++ {
//			var s float32
//			for p := 0; p < k; p++ {
//				s += opA(i, p) * opB(p, j)
//			}
//			C[i*ldc+j] = alpha*s + beta*C[i*ldc+j]
//		}
//	}
//
// With beta == 0, C is not read, so it may hold NaNs; with alpha == 0, as in
// BLAS, A and B are not read. C must not overlap A or B.
//
// Where the CPU has AVX2+FMA or AVX-512 (and the noasm tag is absent), Sgemm
// packs A and B into panels and runs an assembly micro-kernel on the tiles of
// C, over up to GOMAXPROCS goroutines. Each element of C is computed the same
// way whichever goroutine computes it, so results do not depend on
// GOMAXPROCS. They may differ from the reference loop in rounding.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemmArgs("Sgemm", transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	kern := pickKernel(m, n, k)
	if kern == nil {
		sgemmRef(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	sgemmPacked(kern, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
}

// PackedB is op(B) (k×n) packed once into the panels of the micro-kernel
// Sgemm picks, for many products against the same B: the LM head, which
// the chunked cross-entropy multiplies by one block of rows after another
// and would otherwise repack (6.4M floats for GPT-NeoX's 50304×128 head)
// on every block. SgemmPackedB with it gives the same result, bit for bit,
// as Sgemm with the unpacked B.
type PackedB struct {
	kern   *microKernel // nil: no packed form (reference loop, or m differs)
	transB bool
	n, k   int
	b      []float32 // the unpacked operand, for products another kernel serves
	ldb    int
	data   []float32
}

// PackedBSize is the number of floats PackB needs for op(B) (k×n) in
// products of m rows; 0 where Sgemm would not pack (tiny products, no
// assembly kernel).
func PackedBSize(m, n, k int) int {
	kern := pickKernel(m, n, k)
	if kern == nil {
		return 0
	}
	return (n + kern.nr - 1) / kern.nr * kern.nr * k
}

// PackB packs op(B) (k×n, stored as Sgemm's b with stride ldb) into buf
// (at least PackedBSize(m, n, k) floats) for products of m rows. b must
// stay unchanged while the PackedB is used: products whose row count picks
// another micro-kernel read it unpacked.
func PackB(transB bool, m, n, k int, b []float32, ldb int, buf []float32) *PackedB {
	checkGemmArgs("PackB", false, transB, 0, n, k, nil, 1, b, ldb, nil, 1)
	p := &PackedB{kern: pickKernel(m, n, k), transB: transB, n: n, k: k, b: b, ldb: ldb}
	if p.kern == nil || n == 0 || k == 0 {
		p.kern = nil
		return p
	}
	nr := p.kern.nr
	np := (n + nr - 1) / nr
	p.data = buf[:np*nr*k]
	nkb := (k + kcMax - 1) / kcMax
	kcb := (k + nkb - 1) / nkb
	for pc := 0; pc < k; pc += kcb {
		kc := min(kcb, k-pc)
		blk := p.data[np*nr*pc:]
		for jp := range np {
			packB(blk[jp*nr*kc:(jp+1)*nr*kc], transB, b, ldb, jp*nr, min(nr, n-jp*nr), pc, kc, nr)
		}
	}
	return p
}

// SgemmPackedB is Sgemm with B given packed: C = alpha·op(A)·op(B) + beta·C
// for op(A) m×k.
func SgemmPackedB(transA bool, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int) {
	n, k := pb.n, pb.k
	kern := pickKernel(m, n, k)
	if kern == nil || kern != pb.kern || m == 0 || alpha == 0 {
		Sgemm(transA, pb.transB, m, n, k, alpha, a, lda, pb.b, pb.ldb, beta, c, ldc)
		return
	}
	checkGemmArgs("SgemmPackedB", transA, pb.transB, m, n, k, a, lda, pb.b, pb.ldb, c, ldc)
	sgemmPacked(kern, transA, pb.transB, m, n, k, alpha, a, lda, pb.b, pb.ldb, beta, c, ldc, pb.data)
}

// checkGemmArgs panics unless the slices hold every element the call touches;
// the assembly kernels write through pointers and must not run off the end.
func checkGemmArgs[T float32 | float64](fn string, transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: %s: negative size m=%d n=%d k=%d", fn, m, n, k))
	}
	need := func(what string, rows, cols, ld int, s []T) {
		if rows == 0 || cols == 0 {
			return
		}
		if ld < cols {
			panic(fmt.Sprintf("kernels: %s: ld%s=%d < %d columns", fn, what, ld, cols))
		}
		if n := (rows-1)*ld + cols; len(s) < n {
			panic(fmt.Sprintf("kernels: %s: len(%s)=%d < %d needed for %d×%d with stride %d", fn, what, len(s), n, rows, cols, ld))
		}
	}
	if transA {
		need("a", k, m, lda, a)
	} else {
		need("a", m, k, lda, a)
	}
	if transB {
		need("b", n, k, ldb, b)
	} else {
		need("b", k, n, ldb, b)
	}
	need("c", m, n, ldc, c)
}

func sgemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
		} else if beta != 1 {
			for j := range row {
				row[j] *= beta
			}
		}
		for p := 0; p < k; p++ {
			var av float32
			if transA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			av *= alpha
			if !transB {
				brow := b[p*ldb : p*ldb+n]
				for j, bv := range brow {
					row[j] += av * bv
				}
			} else {
				for j := range row {
					row[j] += av * b[j*ldb+p]
				}
			}
		}
	}
}

// microKernel is an assembly kernel computing an mr×nr tile of C from packed
// panels: fn(kc, a, b, c, ldc, alpha, beta) stores alpha·AB + beta·C, not
// reading C when beta == 0.
//
// direct, when non-nil, is the same kernel reading A unpacked: mr rows of a
// row-major matrix with row stride lda. Sgemm uses it for the full row
// panels of a non-transposed A, which then need no packing; the tiles are
// bit-identical to the packed kernel's.
type microKernel struct {
	name   string
	mr, nr int
	fn     func(kc int, a, b, c *float32, ldc int, alpha, beta float32)
	direct func(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)
}

// useDirect turns the unpacked-A kernels on; tests switch it off to cover
// the packed path.
var useDirect = true

// kernelWide and kernelNarrow are the micro-kernels this CPU runs, nil when
// only the reference loop is available. kernelNarrow serves products with
// few rows or columns, where the wide tile would be mostly padding.
var kernelWide, kernelNarrow *microKernel

// supportedKernels lists every micro-kernel this CPU can run, for tests.
var supportedKernels []*microKernel

// Kernel names the micro-kernel Sgemm uses for large products, or "reference"
// when only the pure-Go loop is available.
func Kernel() string {
	if kernelWide == nil {
		return "reference"
	}
	return kernelWide.name
}

const (
	kcMax        = 256     // depth of one packed block
	mcMax        = 144     // rows of packed A streamed per pass over a B panel
	smallFlops   = 4096    // m·n·k below which the reference loop is used
	parallelWork = 1 << 20 // m·n·k from which Sgemm uses several goroutines
	maxTile      = 16 * 32 // mr·nr of the largest micro-kernel
)

// pickKernel chooses a micro-kernel from the shape alone, so that the choice,
// and thus every rounding, is the same on every run.
func pickKernel(m, n, k int) *microKernel {
	if kernelWide == nil || m*n*k < smallFlops {
		return nil
	}
	if n <= kernelNarrow.nr || m <= kernelNarrow.mr {
		return kernelNarrow
	}
	return kernelWide
}

func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
		} else if beta != 1 {
			Scale(beta, row)
		}
	}
}

// gemmJob is one packed product in progress; jobs and their packing
// buffers are pooled so steady-state calls do not allocate.
type gemmJob struct {
	kern           *microKernel
	transA, transB bool
	m, n           int
	alpha          float32
	a, b, c        []float32
	lda, ldb, ldc  int
	mp, np         int     // panels of A (mr rows) and of B (nr columns)
	pc, kc         int     // the depth block being computed
	beta           float32 // beta for this depth block: 1 after the first
	workers        int
	direct         bool      // full row panels of A are read unpacked
	prepacked      bool      // pb is B packed beforehand (PackB)
	buf            []float32 // packed A, packed B, then one tile per worker
	pa, pb         []float32
	wg             sync.WaitGroup
}

// jobs keeps finished jobs and their packing buffers for reuse. It is a
// plain free list rather than a sync.Pool, which the garbage collector
// empties: steady-state training steps then allocate nothing here. It holds
// at most as many jobs as ever ran at once.
var jobs struct {
	sync.Mutex
	free []*gemmJob
}

func getJob() *gemmJob {
	jobs.Lock()
	defer jobs.Unlock()
	if n := len(jobs.free); n > 0 {
		j := jobs.free[n-1]
		jobs.free = jobs.free[:n-1]
		return j
	}
	return new(gemmJob)
}

func putJob(j *gemmJob) {
	jobs.Lock()
	jobs.free = append(jobs.free, j)
	jobs.Unlock()
}

// helpers bounds the helper goroutines of all parallel products running at
// once, process-wide, to GOMAXPROCS−1 (each caller computes too). Concurrent
// trials in one process thus split the cores between them instead of
// oversubscribing them. How many helpers a product gets changes only which
// goroutine computes a tile, never how, so results stay bit-identical.
var helpers = &tokenPool{}

type tokenPool struct {
	mu   sync.Mutex
	used int
}

// acquire takes up to n tokens without waiting and returns how many it got.
func (p *tokenPool) acquire(n int) int {
	if n <= 0 {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	got := min(n, max(0, runtime.GOMAXPROCS(0)-1-p.used))
	p.used += got
	return got
}

func (p *tokenPool) release(n int) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	p.used -= n
	p.mu.Unlock()
}

// sgemmPacked runs the packed product; pre, when non-nil, is op(B)
// already packed (PackB), every depth block after the other.
func sgemmPacked(kern *microKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, pre []float32) {
	j := getJob()
	mr, nr := kern.mr, kern.nr
	*j = gemmJob{
		kern: kern, transA: transA, transB: transB, m: m, n: n, alpha: alpha,
		a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc,
		mp: (m + mr - 1) / mr, np: (n + nr - 1) / nr,
		workers: 1, buf: j.buf,
		direct:    useDirect && !transA && kern.direct != nil,
		prepacked: pre != nil,
	}
	if m*n*k >= parallelWork {
		j.workers = 1 + helpers.acquire(min(runtime.GOMAXPROCS(0), max(j.mp, j.np))-1)
		defer helpers.release(j.workers - 1)
	}
	nkb := (k + kcMax - 1) / kcMax
	kcb := (k + nkb - 1) / nkb
	na, nb := j.mp*mr*kcb, j.np*nr*kcb
	if pre != nil {
		nb = 0
	}
	if need := na + nb + j.workers*maxTile; cap(j.buf) < need {
		j.buf = make([]float32, need)
	}
	j.pa, j.pb = j.buf[:na], j.buf[na:na+nb]
	for pc := 0; pc < k; pc += kcb {
		j.pc, j.kc, j.beta = pc, min(kcb, k-pc), beta
		if pre != nil {
			j.pb = pre[j.np*nr*pc : j.np*nr*(pc+j.kc)]
		}
		if pc > 0 {
			j.beta = 1
		}
		j.parallel((*gemmJob).pack)
		j.parallel((*gemmJob).compute)
	}
	j.a, j.b, j.c, j.pa, j.pb = nil, nil, nil, nil, nil
	putJob(j)
}

// parallel runs f for workers 0..j.workers-1, worker 0 on the calling
// goroutine and the others on the package's helper goroutines.
func (j *gemmJob) parallel(f func(j *gemmJob, w int)) {
	if j.workers == 1 {
		f(j, 0)
		return
	}
	startHelpers(max(j.workers-1, runtime.GOMAXPROCS(0)-1))
	j.wg.Add(j.workers - 1)
	for w := 1; w < j.workers; w++ {
		work <- task{j, f, w}
	}
	f(j, 0)
	j.wg.Wait()
}

// task is one worker's share of a parallel phase.
type task struct {
	j *gemmJob
	f func(j *gemmJob, w int)
	w int
}

// work feeds long-lived helper goroutines, so a parallel product starts no
// goroutine (and allocates nothing) per call. The tokens of helpers bound
// how many tasks are in flight, and at least that many helpers run, so a
// task never waits for a helper.
var (
	work      = make(chan task)
	helpersMu sync.Mutex
	started   int
)

func startHelpers(n int) {
	helpersMu.Lock()
	defer helpersMu.Unlock()
	for ; started < n; started++ {
		go func() {
			for t := range work {
				t.f(t.j, t.w)
				t.j.wg.Done()
			}
		}()
	}
}

// pack packs worker w's share of the panels of A and B for the current
// depth block.
func (j *gemmJob) pack(w int) {
	mr, nr, kc, W := j.kern.mr, j.kern.nr, j.kc, j.workers
	for ip := j.mp * w / W; ip < j.mp*(w+1)/W; ip++ {
		if j.direct && (ip+1)*mr <= j.m {
			continue // read in place by the direct kernel
		}
		packA(j.pa[ip*mr*kc:(ip+1)*mr*kc], j.transA, j.a, j.lda, ip*mr, min(mr, j.m-ip*mr), j.pc, kc, mr)
	}
	if j.prepacked {
		return
	}
	for jp := j.np * w / W; jp < j.np*(w+1)/W; jp++ {
		packB(j.pb[jp*nr*kc:(jp+1)*nr*kc], j.transB, j.b, j.ldb, jp*nr, min(nr, j.n-jp*nr), j.pc, kc, nr)
	}
}

// compute runs the micro-kernel over worker w's tiles of C: a fixed range
// of column panels (or row panels, when there are more of those). Which
// worker computes a tile does not change how it is computed.
func (j *gemmJob) compute(w int) {
	mr, nr, kc, W := j.kern.mr, j.kern.nr, j.kc, j.workers
	i0, i1, j0, j1 := 0, j.mp, 0, j.np
	if j.np >= j.mp {
		j0, j1 = j.np*w/W, j.np*(w+1)/W
	} else {
		i0, i1 = j.mp*w/W, j.mp*(w+1)/W
	}
	tmp := j.buf[len(j.buf)-(w+1)*maxTile:][:maxTile]
	c, ldc, alpha, beta := j.c, j.ldc, j.alpha, j.beta
	mcp := max(1, mcMax/mr)
	for ib := i0; ib < i1; ib += mcp {
		for jp := j0; jp < j1; jp++ {
			bp := &j.pb[jp*nr*kc]
			nw := min(nr, j.n-jp*nr)
			for ip := ib; ip < min(ib+mcp, i1); ip++ {
				mh := min(mr, j.m-ip*mr)
				off := ip*mr*ldc + jp*nr
				if j.direct && mh == mr {
					ad := &j.a[ip*mr*j.lda+j.pc]
					if nw == nr {
						j.kern.direct(kc, ad, j.lda, bp, &c[off], ldc, alpha, beta)
						continue
					}
					j.kern.direct(kc, ad, j.lda, bp, &tmp[0], nr, alpha, 0)
				} else {
					ap := &j.pa[ip*mr*kc]
					if mh == mr && nw == nr {
						j.kern.fn(kc, ap, bp, &c[off], ldc, alpha, beta)
						continue
					}
					j.kern.fn(kc, ap, bp, &tmp[0], nr, alpha, 0)
				}
				for i := 0; i < mh; i++ {
					crow := c[off+i*ldc : off+i*ldc+nw]
					trow := tmp[i*nr : i*nr+nw]
					if beta == 0 {
						copy(crow, trow)
						continue
					}
					for x, t := range trow {
						crow[x] = t + beta*crow[x]
					}
				}
			}
		}
	}
}

// packA writes rows i0..i0+mh of op(A), columns pc..pc+kc, to dst as kc
// groups of mr values, zero-padding rows past mh.
func packA(dst []float32, trans bool, a []float32, lda, i0, mh, pc, kc, mr int) {
	if trans { // op(A)(i, p) = a[p*lda+i]: rows of a are contiguous in i
		for p := 0; p < kc; p++ {
			d := dst[p*mr : p*mr+mr]
			src := a[(pc+p)*lda+i0:]
			copy(d, src[:mh])
			clear(d[mh:])
		}
		return
	}
	transposeInto(dst, a, lda, i0, mh, pc, kc, mr)
}

// packB writes columns j0..j0+nw of op(B), rows pc..pc+kc, to dst as kc
// groups of nr values, zero-padding columns past nw.
func packB(dst []float32, trans bool, b []float32, ldb, j0, nw, pc, kc, nr int) {
	if !trans {
		for p := 0; p < kc; p++ {
			d := dst[p*nr : p*nr+nr]
			src := b[(pc+p)*ldb+j0:]
			copy(d, src[:nw])
			clear(d[nw:])
		}
		return
	}
	transposeInto(dst, b, ldb, j0, nw, pc, kc, nr)
}

// transposeInto writes dst[p*w+r] = s[(r0+r)*ld+pc+p] for r < rows and
// p < kc, and zero for rows ≤ r < w.
func transposeInto(dst, s []float32, ld, r0, rows, pc, kc, w int) {
	dst = dst[:kc*w]
	r := 0
	if haveAVX2 && kc >= 8 && rows >= 8 {
		blocks := kc / 8
		for r < rows {
			// A last partial group overlaps the previous one, rewriting
			// some rows with the same values.
			r = min(r, rows-8)
			// Bounds for the assembly: the last element read and written.
			_ = dst[(8*blocks-1)*w+r+7]
			_ = s[(r0+r+7)*ld+pc+8*blocks-1]
			transpose8AVX2(&dst[r], w, &s[(r0+r)*ld+pc], ld, blocks)
			for p := 8 * blocks; p < kc; p++ {
				for j := range 8 {
					dst[p*w+r+j] = s[(r0+r+j)*ld+pc+p]
				}
			}
			r += 8
		}
	}
	for ; r+4 <= rows; r += 4 {
		s0 := s[(r0+r)*ld+pc:][:kc]
		s1 := s[(r0+r+1)*ld+pc:][:kc]
		s2 := s[(r0+r+2)*ld+pc:][:kc]
		s3 := s[(r0+r+3)*ld+pc:][:kc]
		for p := range s0 {
			d := dst[p*w+r:][:4]
			d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
		}
	}
	for ; r < rows; r++ {
		s0 := s[(r0+r)*ld+pc:][:kc]
		for p, v := range s0 {
			dst[p*w+r] = v
		}
	}
	if rows < w {
		for p := 0; p < kc; p++ {
			clear(dst[p*w+rows : p*w+w])
		}
	}
}
