package methods

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"peftbench/kernels"
	"peftbench/nn"
)

// This file holds what OFT and BOFT share: the Cayley transform of a batch
// of skew-symmetric blocks (exact, or HF PEFT's truncated Cayley–Neumann
// series) as a differentiable graph op with its own exact backward, and the
// block-diagonal rotation of a layer's input, x ↦ x·blockdiag(R_1, …, R_k),
// the "input-centric" forward both HF PEFT layers use.

// skewKind says how a block's trainable numbers become the skew-symmetric
// matrix Q.
type skewKind int

const (
	// skewUpper: b(b−1)/2 numbers fill the strict upper triangle in
	// torch.triu_indices(b, b, 1) order (row-major); Q = U − Uᵀ (OFT's
	// _pytorch_skew_symmetric).
	skewUpper skewKind = iota
	// skewHalf: b² numbers form a full matrix A; Q = (A − Aᵀ)/2 (BOFT's
	// cayley_batch).
	skewHalf
)

// cayleyOp maps a batch of blocks' trainable numbers to the rotations
// R_j = Cayley(Q_j), each b×b, as one nn.Func. Exact (neumann == 0):
// R = (I − Q)(I + Q)⁻¹, what torch.linalg.solve(I + Q, I − Q, left=False)
// computes in HF PEFT, via an LU factorisation with partial pivoting in
// float64. Otherwise the Cayley–Neumann polynomial R = I + Σ_k c_k·Q^k
// of HF PEFT's _cayley_batch with num_cayley_neumann_terms = neumann (see
// neumannCoeffs). Both backward passes are exact (no finite differences):
// exact: dL/dQ = −(I + R)ᵀ·G·(I + Q)⁻ᵀ; series: reverse mode through the
// powers Q^k = Q^{k−1}·Q as HF forms them. The default five terms,
// I + 2Q + 2Q² + 2Q³ + Q⁴, are evaluated as I + 2Q + S·(2I + 2Q + S) with
// S = Q², two b×b products instead of three, and differentiated in three
// instead of six (see factoredBack): the same polynomial, rounded
// differently only in float64. Arithmetic is float64 inside, float32 at
// the boundary.
type cayleyOp struct {
	b, blocks int
	kind      skewKind
	neumann   int
	fn        *nn.Func
	// q, r and inv (exact), s (factored) or pow[1…K] (series) are the
	// current block's matrices, b×b each: views into that block's part of
	// cache when forward keeps them for backward, else into own.
	q, r, inv, s []float64
	pow          [][]float64 // Q^0 (unused), Q^1 … Q^K for the series
	own          []float64
	// scratch, b×b each (float64), reused by every call: ops of one graph
	// run one at a time.
	a, g, t, u, v []float64
	perm          []int
	// cache holds, per block, what forward computed (Q, R and (I + Q)⁻¹,
	// S or the powers) for the backward pass, valid while the parameters
	// still equal snap (a second forward or an update in between makes
	// backward recompute).
	cache []float64
	snap  []float32
	// ws are the views and scratch of each goroutine that computes
	// blocks (ws[0] is c itself); see parallelBlocks.
	ws []*cayleyOp
}

func newCayleyOp(name string, b, blocks int, kind skewKind, neumann int) *cayleyOp {
	c := &cayleyOp{b: b, blocks: blocks, kind: kind, neumann: neumann}
	c.scratch()
	c.ws = []*cayleyOp{c}
	c.fn = &nn.Func{Name: name, Forward: c.forward, Backward: c.backward}
	return c
}

// scratch allocates c's block views and scratch matrices.
func (c *cayleyOp) scratch() {
	bb := c.b * c.b
	for _, p := range []*[]float64{&c.a, &c.g, &c.t, &c.u, &c.v} {
		*p = make([]float64, bb)
	}
	if c.neumann > 0 && !c.factored() {
		c.pow = make([][]float64, len(neumannCoeffs(c.neumann)))
	}
	c.own = make([]float64, c.states()*bb)
	c.perm = make([]int, c.b)
}

// cayleyParallelMin is the work blocks·b³ from which parallelBlocks
// splits the blocks between goroutines (a few b×b products each).
const cayleyParallelMin = 1 << 16

// parallelBlocks calls fn(w, j) for every block j, w the views and scratch
// of the goroutine computing it: one goroutine for little work, else
// GOMAXPROCS (at most one per block) on disjoint ranges of blocks. A
// block's result is computed the same way by whichever goroutine, and
// writes only that block's part of the outputs, so the split never
// changes a result.
func (c *cayleyOp) parallelBlocks(fn func(w *cayleyOp, j int)) {
	workers := 1
	if c.blocks*c.b*c.b*c.b >= cayleyParallelMin {
		workers = min(runtime.GOMAXPROCS(0), c.blocks)
	}
	for len(c.ws) < workers {
		w := &cayleyOp{b: c.b, blocks: c.blocks, kind: c.kind, neumann: c.neumann, fn: c.fn}
		w.scratch()
		c.ws = append(c.ws, w)
	}
	parallel(c.blocks, workers, func(w, lo, hi int) {
		for j := lo; j < hi; j++ {
			fn(c.ws[w], j)
		}
	})
}

// factored reports whether the series is the default five-term one,
// evaluated as I + 2Q + S·(2I + 2Q + S).
func (c *cayleyOp) factored() bool { return c.neumann == 5 }

// states is the number of b×b matrices a block keeps for backward.
func (c *cayleyOp) states() int {
	if c.neumann == 0 || c.factored() {
		return 3 // q, r and inv or s
	}
	return 1 + len(neumannCoeffs(c.neumann)) // q, r, pow[1…K]
}

// bind points the block matrices at buf (states()·b² numbers).
func (c *cayleyOp) bind(buf []float64) {
	bb := c.b * c.b
	at := func(i int) []float64 { return buf[i*bb : (i+1)*bb : (i+1)*bb] }
	c.q, c.r = at(0), at(1)
	switch {
	case c.neumann == 0:
		c.inv = at(2)
	case c.factored():
		c.s = at(2)
	default:
		for k := 1; k < len(c.pow); k++ {
			c.pow[k] = at(k + 1)
		}
	}
}

// inputLen is the number of trainable numbers per block.
func (c *cayleyOp) inputLen() int {
	if c.kind == skewUpper {
		return c.b * (c.b - 1) / 2
	}
	return c.b * c.b
}

// apply returns the blocks' rotations (blocks×b×b) of the parameter p in g.
func (c *cayleyOp) apply(g *nn.Graph, p *nn.Tensor) *nn.Tensor {
	if p.Size() != c.blocks*c.inputLen() {
		panic(fmt.Sprintf("methods: %s: %d parameters, want %d blocks × %d", c.fn.Name, p.Size(), c.blocks, c.inputLen()))
	}
	return g.Custom(c.fn, []int{c.blocks, c.b, c.b}, p)
}

// neumannCoeffs returns c_0 … c_K of HF PEFT's Cayley–Neumann polynomial
// for n terms (peft.tuners.oft.layer.OFTRotationModule._cayley_batch):
// n = 1: I; n = 2: I + 2Q; n ≥ 3: I + 2Q + 2Q² + 2Q³ + … + 2Q^{n−2} +
// Q^{n−1}, except that n = 3 and n = 4 both give I + 2Q + 2Q² + Q³ (the
// loop adds the 2·Q^k terms for 3 ≤ k < n−1 and then one Q^{max(3, n−1)}).
// It truncates (I + Q)(I − Q)⁻¹ = I + 2Σ_{k≥1} Q^k.
func neumannCoeffs(n int) []float64 {
	switch {
	case n <= 1:
		return []float64{1}
	case n == 2:
		return []float64{1, 2}
	}
	k := max(3, n-1)
	cs := make([]float64, k+1)
	cs[0] = 1
	for i := 1; i < k; i++ {
		cs[i] = 2
	}
	cs[k] = 1
	return cs
}

// skew fills c.q with block j's Q from its numbers v.
func (c *cayleyOp) skew(v []float32) {
	b := c.b
	if c.kind == skewUpper {
		clear(c.q)
		p := 0
		for i := range b {
			for j := i + 1; j < b; j++ {
				c.q[i*b+j] = float64(v[p])
				c.q[j*b+i] = -float64(v[p])
				p++
			}
		}
		return
	}
	for i := range b {
		for j := range b {
			c.q[i*b+j] = 0.5 * (float64(v[i*b+j]) - float64(v[j*b+i]))
		}
	}
}

// unskew adds the gradient with respect to a block's numbers, given dQ
// (in c.t), to grad.
func (c *cayleyOp) unskew(grad []float32) {
	b, dq := c.b, c.t
	if c.kind == skewUpper {
		p := 0
		for i := range b {
			for j := i + 1; j < b; j++ {
				grad[p] += float32(dq[i*b+j] - dq[j*b+i])
				p++
			}
		}
		return
	}
	for i := range b {
		for j := range b {
			grad[i*b+j] += float32(0.5 * (dq[i*b+j] - dq[j*b+i]))
		}
	}
}

func (c *cayleyOp) forward(y []float32, in []*nn.Tensor) {
	b, n := c.b, c.inputLen()
	bb, sz := b*b, c.states()*b*b
	keep := in[0].Grad != nil
	if keep && c.cache == nil {
		c.cache = make([]float64, c.blocks*sz)
	}
	c.snap = c.snap[:0]
	c.parallelBlocks(func(w *cayleyOp, j int) {
		if keep {
			w.bind(c.cache[j*sz : (j+1)*sz])
		} else {
			w.bind(w.own)
		}
		w.skew(in[0].Data[j*n : (j+1)*n])
		w.rotation()
		for i, v := range w.r {
			y[j*bb+i] = float32(v)
		}
	})
	if keep {
		c.snap = append(c.snap, in[0].Data...)
	}
}

// rotation sets c.r = Cayley(c.q) (and c.inv = (I + Q)⁻¹ when exact, c.s
// = Q² for the factored series, c.pow the powers of Q for the others).
func (c *cayleyOp) rotation() {
	b := c.b
	if c.neumann == 0 {
		// R = (I − Q)·(I + Q)⁻¹.
		for i := range c.a {
			c.a[i] = c.q[i]
		}
		for i := range b {
			c.a[i*b+i]++
		}
		if !invert(c.inv, c.a, c.u, c.perm, b) {
			// I + Q with Q real skew-symmetric has eigenvalues 1 + iλ:
			// never singular.
			panic("methods: Cayley transform: I + Q is singular")
		}
		for i := range c.a { // a = I − Q
			c.a[i] = -c.q[i]
		}
		for i := range b {
			c.a[i*b+i]++
		}
		matMul64(c.r, c.a, c.inv, b, false, false)
		return
	}
	if c.factored() {
		// S = Q², T = 2I + 2Q + S (in a), R = I + 2Q + S·T.
		matMul64(c.s, c.q, c.q, b, false, false)
		for i, q := range c.q {
			c.a[i] = 2*q + c.s[i]
		}
		for i := range b {
			c.a[i*b+i] += 2
		}
		matMul64(c.r, c.s, c.a, b, false, false)
		for i, q := range c.q {
			c.r[i] += 2 * q
		}
		for i := range b {
			c.r[i*b+i]++
		}
		return
	}
	cs := neumannCoeffs(c.neumann)
	clear(c.r)
	for i := range b {
		c.r[i*b+i] = cs[0]
	}
	for k := 1; k < len(cs); k++ {
		if k == 1 {
			copy(c.pow[1], c.q)
		} else {
			matMul64(c.pow[k], c.pow[k-1], c.q, b, false, false)
		}
		for i, v := range c.pow[k] {
			c.r[i] += cs[k] * v
		}
	}
}

func (c *cayleyOp) backward(dy []float32, in []*nn.Tensor) {
	p := in[0]
	if p.Grad == nil {
		return
	}
	n, bb, sz := c.inputLen(), c.b*c.b, c.states()*c.b*c.b
	cached := c.cache != nil && slices.Equal(c.snap, p.Data)
	c.parallelBlocks(func(w *cayleyOp, j int) {
		if cached {
			w.bind(c.cache[j*sz : (j+1)*sz])
		} else {
			w.bind(w.own)
			w.skew(p.Data[j*n : (j+1)*n])
			w.rotation()
		}
		w.blockBack(dy[j*bb : (j+1)*bb])
		w.unskew(p.Grad[j*n : (j+1)*n])
	})
}

// blockBack sets c.t to dL/dQ (up to its symmetric part, which unskew
// ignores) of the bound block, given dL/dR in dy.
func (c *cayleyOp) blockBack(dy []float32) {
	b := c.b
	for i := range c.g {
		c.g[i] = float64(dy[i])
	}
	switch {
	case c.factored():
		c.factoredBack()
	case c.neumann == 0:
		// dR = −(I + R)·dQ·(I + Q)⁻¹ ⇒ dL/dQ = −(I + R)ᵀ·G·(I + Q)⁻ᵀ.
		for i := range c.a {
			c.a[i] = c.r[i]
		}
		for i := range b {
			c.a[i*b+i]++
		}
		matMul64(c.u, c.a, c.g, b, true, false)   // (I + R)ᵀ·G
		matMul64(c.t, c.u, c.inv, b, false, true) // ·(I + Q)⁻ᵀ
		for i := range c.t {
			c.t[i] = -c.t[i]
		}
	default:
		// R = Σ c_k P_k, P_1 = Q, P_k = P_{k−1}·Q. Walking k down,
		// gk = c_k·G + g_{k+1}·Qᵀ is dL/dP_k; P_k = P_{k−1}·Q sends
		// P_{k−1}ᵀ·gk to dQ, and P_1 = Q sends g1.
		cs := neumannCoeffs(c.neumann)
		clear(c.t)
		carry := c.a
		clear(carry)
		for k := len(cs) - 1; k >= 1; k-- {
			gk := c.u
			for i := range gk {
				gk[i] = cs[k]*c.g[i] + carry[i]
			}
			if k == 1 {
				for i := range c.t {
					c.t[i] += gk[i]
				}
				break
			}
			matMul64Add(c.t, c.pow[k-1], gk, b, true, false)
			matMul64(carry, gk, c.q, b, false, true)
		}
	}
}

// factoredBack sets c.t to a matrix whose skew-symmetric part is that of
// dL/dQ for R = I + 2Q + S·T, T = 2I + 2Q + S, S = Q², given G = dL/dR
// in c.g: dT = Sᵀ·G = S·G (S is symmetric), dS = G·Tᵀ + dT, and
// dQ = 2G + 2dT + dS·Qᵀ + Qᵀ·dS. unskew reads only the skew part, and for
// skew Q the skew part of the last two terms, −(dS·Q + Q·dS), depends on
// dS only through D = (dS + dSᵀ)/2 (Q·E + E·Q is symmetric for skew E),
// where it is −(D·Q − (D·Q)ᵀ) = −2·D·Q up to a symmetric part: one
// product instead of two.
func (c *cayleyOp) factoredBack() {
	b := c.b
	for i, q := range c.q { // a = Tᵀ = 2I − 2Q + S (Q skew, S symmetric)
		c.a[i] = c.s[i] - 2*q
	}
	for i := range b {
		c.a[i*b+i] += 2
	}
	matMul64(c.u, c.s, c.g, b, false, false) // dT = S·G
	matMul64(c.t, c.g, c.a, b, false, false) // G·Tᵀ, B untransposed: cheaper packing
	for i := range b {                       // a = D = sym(G·Tᵀ + dT)
		for k := i; k < b; k++ {
			d := 0.5 * (c.t[i*b+k] + c.u[i*b+k] + c.t[k*b+i] + c.u[k*b+i])
			c.a[i*b+k], c.a[k*b+i] = d, d
		}
	}
	matMul64(c.v, c.a, c.q, b, false, false) // D·Q
	for i, g := range c.g {
		c.t[i] = 2*(g+c.u[i]) - 2*c.v[i]
	}
}

// matMul64 sets c = op(a)·op(b) for n×n row-major matrices.
func matMul64(c, a, bm []float64, n int, ta, tb bool) {
	if n >= 16 {
		kernels.Dgemm(ta, tb, n, n, n, 1, a, n, bm, n, 0, c, n)
		return
	}
	clear(c)
	matMul64Add(c, a, bm, n, ta, tb)
}

// matMul64Add adds op(a)·op(b) to c: kernels.Dgemm from n = 16, where it
// beats a plain loop despite packing.
func matMul64Add(c, a, bm []float64, n int, ta, tb bool) {
	if n >= 16 {
		kernels.Dgemm(ta, tb, n, n, n, 1, a, n, bm, n, 1, c, n)
		return
	}
	for i := range n {
		for k := range n {
			av := a[i*n+k]
			if ta {
				av = a[k*n+i]
			}
			if av == 0 {
				continue
			}
			row := c[i*n : (i+1)*n]
			if tb {
				for j := range row {
					row[j] += av * bm[j*n+k]
				}
			} else {
				for j, bv := range bm[k*n : (k+1)*n] {
					row[j] += av * bv
				}
			}
		}
	}
}

// invert sets inv = a⁻¹ (n×n) by LU factorisation with partial pivoting,
// using lu (n×n) and perm (n) as scratch; false when a is singular.
func invert(inv, a, lu []float64, perm []int, n int) bool {
	copy(lu, a)
	for i := range perm {
		perm[i] = i
	}
	for k := range n {
		p, best := k, math.Abs(lu[k*n+k])
		for i := k + 1; i < n; i++ {
			if v := math.Abs(lu[i*n+k]); v > best {
				p, best = i, v
			}
		}
		if best == 0 {
			return false
		}
		if p != k {
			for j := range n {
				lu[k*n+j], lu[p*n+j] = lu[p*n+j], lu[k*n+j]
			}
			perm[k], perm[p] = perm[p], perm[k]
		}
		piv := lu[k*n+k]
		for i := k + 1; i < n; i++ {
			f := lu[i*n+k] / piv
			lu[i*n+k] = f
			if f == 0 {
				continue
			}
			for j := k + 1; j < n; j++ {
				lu[i*n+j] -= f * lu[k*n+j]
			}
		}
	}
	// Solve L·U·x = P·e_c for every column c.
	for c := range n {
		for i := range n { // forward substitution, unit L
			v := 0.0
			if perm[i] == c {
				v = 1
			}
			for j := range i {
				v -= lu[i*n+j] * inv[j*n+c]
			}
			inv[i*n+c] = v
		}
		for i := n - 1; i >= 0; i-- { // back substitution
			v := inv[i*n+c]
			for j := i + 1; j < n; j++ {
				v -= lu[i*n+j] * inv[j*n+c]
			}
			inv[i*n+c] = v / lu[i*n+i]
		}
	}
	return true
}

// blockRotate is y = x·blockdiag(R_0, …, R_{k−1}) for x (N×In) and the
// rotations r (m×b×b): block j of x's columns, [j·b, (j+1)·b), times R_j,
// or times R_0 for every j when shared (OFT's block_share). HF PEFT
// computes it as einsum("...rk,rkc->...rc") on x reshaped to (…, k, b).
//
// Each group of G = rotateGroup(b) adjacent blocks is one kernels.Sgemm
// against the group's dense (G·b)×(G·b) block-diagonal matrix: for small
// blocks (BOFT's default b = 4) one product of width 32 runs far faster
// than G products of width b, though it multiplies G−1 of every G
// operands by zero. The zeros change no sum (x·0 adds an exact zero), so
// every output is the b-term sum a per-block product computes, and the
// gradient of R_j is the diagonal block of the group's Xᵀ·dY.
//
// blockRotateT is the same with every R_j transposed,
// y = x·blockdiag(R_0ᵀ, …), so that rotating the rows of W0 gives OFT's
// W' = W0·Rᵀ.
var blockRotate, blockRotateT = blockRotateFunc(false), blockRotateFunc(true)

func blockRotateFunc(tr bool) *nn.Func {
	name := "block-rotate"
	if tr {
		name += "-t"
	}
	return &nn.Func{
		Name: name,
		Forward: func(y []float32, in []*nn.Tensor) {
			x, r := in[0], in[1]
			cols, b, shared := rotateDims(x, r)
			rows := x.Rows()
			forGroups(cols, b, r, shared, func(c0, w int, d []float32, ld int) {
				kernels.Sgemm(false, tr, rows, w, w, 1, x.Data[c0:], cols, d, ld, 0, y[c0:], cols)
			})
		},
		Backward: func(dy []float32, in []*nn.Tensor) {
			x, r := in[0], in[1]
			cols, b, shared := rotateDims(x, r)
			rows, bb := x.Rows(), b*b
			var tmp *[]float32
			if r.Grad != nil && rotateGroup(b) > 1 {
				tmp = rotateScratch(rotateGroup(b) * b)
				defer rotatePool.Put(tmp)
			}
			forGroups(cols, b, r, shared, func(c0, w int, d []float32, ld int) {
				if x.Grad != nil { // dX_j += dY_j·R_jᵀ (·R_j when transposed)
					kernels.Sgemm(false, !tr, rows, w, w, 1, dy[c0:], cols, d, ld, 1, x.Grad[c0:], cols)
				}
				// dR_j += X_jᵀ·dY_j, or its transpose dY_jᵀ·X_j
				a, bm := x.Data[c0:], dy[c0:]
				if tr {
					a, bm = bm, a
				}
				if r.Grad == nil {
					return
				}
				j0 := c0 / b
				if tmp == nil { // one block
					off := rotIndex(j0, shared) * bb
					kernels.Sgemm(true, false, b, b, rows, 1, a, cols, bm, cols, 1, r.Grad[off:], b)
					return
				}
				t := *tmp
				kernels.Sgemm(true, false, w, w, rows, 1, a, cols, bm, cols, 0, t, w)
				for k := range w / b { // the diagonal blocks of Xᵀ·dY
					g := r.Grad[rotIndex(j0+k, shared)*bb:][:bb]
					for i := range b {
						row := t[(k*b+i)*w+k*b:][:b]
						for c, v := range row {
							g[i*b+c] += v
						}
					}
				}
			})
		},
	}
}

// rotateGroup is the number of adjacent b×b blocks blockRotate multiplies
// at once: blocks narrower than 16 are grouped to width 32 at most.
func rotateGroup(b int) int {
	if b >= 16 {
		return 1
	}
	return 32 / b
}

// forGroups calls f for each group of blocks: its first column c0, its
// width w and its block-diagonal matrix d (w×w, row stride ld) — R_j
// itself for a single block.
func forGroups(cols, b int, r *nn.Tensor, shared bool, f func(c0, w int, d []float32, ld int)) {
	bb, gr := b*b, rotateGroup(b)
	if gr == 1 {
		for j := range cols / b {
			f(j*b, b, r.Data[rotIndex(j, shared)*bb:][:bb], b)
		}
		return
	}
	buf := rotateScratch(gr * b)
	defer rotatePool.Put(buf)
	for j0 := 0; j0 < cols/b; j0 += gr {
		n := min(gr, cols/b-j0)
		w := n * b
		d := (*buf)[:w*w]
		if !shared || j0 == 0 || n < gr { // shared: the same d every full group
			clear(d)
			for k := range n {
				rj := r.Data[rotIndex(j0+k, shared)*bb:]
				for i := range b {
					copy(d[(k*b+i)*w+k*b:][:b], rj[i*b:(i+1)*b])
				}
			}
		}
		f(j0*b, w, d, w)
	}
}

// rotatePool holds blockRotate's w×w scratch matrices.
var rotatePool sync.Pool

func rotateScratch(w int) *[]float32 {
	if p, ok := rotatePool.Get().(*[]float32); ok && cap(*p) >= w*w {
		*p = (*p)[:w*w]
		return p
	}
	s := make([]float32, w*w)
	return &s
}

func rotateDims(x, r *nn.Tensor) (cols, b int, shared bool) {
	cols, b = x.Cols(), r.Shape[1]
	return cols, b, r.Shape[0] == 1 && cols > b
}

func rotIndex(j int, shared bool) int {
	if shared {
		return 0
	}
	return j
}

// rotateInput returns x·blockdiag(R) in g (see blockRotate).
func rotateInput(g *nn.Graph, x, r *nn.Tensor) *nn.Tensor {
	if c, b := x.Cols(), r.Shape[1]; c%b != 0 || (r.Shape[0] != 1 && r.Shape[0]*b != c) {
		panic(fmt.Sprintf("methods: rotate: input %v, rotations %v", x.Shape, r.Shape))
	}
	return g.Custom(blockRotate, x.Shape, x, r)
}

// rotateRowsT returns w·blockdiag(R_jᵀ) in g (see blockRotateT).
func rotateRowsT(g *nn.Graph, w, r *nn.Tensor) *nn.Tensor {
	if c, b := w.Cols(), r.Shape[1]; c%b != 0 || (r.Shape[0] != 1 && r.Shape[0]*b != c) {
		panic(fmt.Sprintf("methods: rotate: weight %v, rotations %v", w.Shape, r.Shape))
	}
	return g.Custom(blockRotateT, w.Shape, w, r)
}

// identityRows returns the n×n identity as a graph constant.
func identityRows(g *nn.Graph, n int) *nn.Tensor {
	t := g.Zeros(n, n)
	for i := range n {
		t.Data[i*n+i] = 1
	}
	return t
}
