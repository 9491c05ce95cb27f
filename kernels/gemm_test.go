package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// gemm64 is the reference loop in float64, with the bound
// Σ|opA||opB|·|alpha| + |beta·C| per element used to scale the tolerance.
func gemm64[T float32 | float64](transA, transB bool, m, n, k int, alpha float64, a []T, lda int, b []T, ldb int, beta float64, c []T, ldc int) (want, bound []float64) {
	want = make([]float64, m*n)
	bound = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			for p := 0; p < k; p++ {
				var av, bv T
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
				s += float64(av) * float64(bv)
				sa += math.Abs(float64(av) * float64(bv))
			}
			w := alpha * s
			bd := math.Abs(alpha) * sa
			if beta != 0 {
				w += beta * float64(c[i*ldc+j])
				bd += math.Abs(beta * float64(c[i*ldc+j]))
			}
			want[i*n+j], bound[i*n+j] = w, bd
		}
	}
	return want, bound
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	pad            int // extra row stride on every operand
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%v,tB=%v,m=%d,n=%d,k=%d,alpha=%g,beta=%g,pad=%d", tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.pad)
}

const guards = 16 // NaN sentinels before and after C

// checkGemm runs gemm on tc with guard values around C and compares it with
// the float64 reference.
func checkGemm(t *testing.T, r *rand.Rand, tc gemmCase, gemm func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)) {
	t.Helper()
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = ac, ar
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = bc, br
	}
	lda, ldb, ldc := ac+tc.pad, bc+tc.pad, tc.n+tc.pad
	a := randSlice(r, max(0, (ar-1)*lda+ac))
	b := randSlice(r, max(0, (br-1)*ldb+bc))
	cLen := max(0, (tc.m-1)*ldc+tc.n)
	buf := make([]float32, cLen+2*guards)
	for i := range buf {
		buf[i] = float32(math.NaN())
	}
	c := buf[guards : guards+cLen]
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			if tc.beta != 0 {
				c[i*ldc+j] = float32(r.NormFloat64())
			}
		}
	}
	want, bound := gemm64(tc.transA, tc.transB, tc.m, tc.n, tc.k, float64(tc.alpha), a, lda, b, ldb, float64(tc.beta), c, ldc)
	gemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			got := float64(c[i*ldc+j])
			tol := 1e-5*bound[i*tc.n+j] + 1e-30
			if d := math.Abs(got - want[i*tc.n+j]); !(d <= tol) {
				t.Fatalf("%v: C[%d,%d] = %g, want %g (tol %g)", tc, i, j, got, want[i*tc.n+j], tol)
			}
		}
		// The padding between rows must stay untouched.
		for j := tc.n; j < ldc && i < tc.m-1; j++ {
			if v := c[i*ldc+j]; !math.IsNaN(float64(v)) {
				t.Fatalf("%v: padding C[%d,%d] overwritten with %g", tc, i, j, v)
			}
		}
	}
	for i := 0; i < guards; i++ {
		if !math.IsNaN(float64(buf[i])) || !math.IsNaN(float64(buf[len(buf)-1-i])) {
			t.Fatalf("%v: write outside C", tc)
		}
	}
}

// gemmCases samples shapes in 1..67 per dimension, all transposes, with and
// without strides, and alpha/beta variants; edges around the tile sizes are
// always included.
func gemmCases(r *rand.Rand, n int) []gemmCase {
	dims := []int{1, 2, 5, 6, 7, 11, 12, 13, 15, 16, 17, 31, 32, 33, 67}
	scal := [][2]float32{{1, 0}, {1, 1}, {0.5, -1.5}, {-2, 0}, {1, 0.25}}
	var cases []gemmCase
	for i := 0; i < n; i++ {
		tc := gemmCase{
			transA: i&1 != 0, transB: i&2 != 0,
			pad: (i / 4 % 2) * (1 + r.IntN(5)),
		}
		pick := func() int {
			if r.IntN(2) == 0 {
				return dims[r.IntN(len(dims))]
			}
			return 1 + r.IntN(67)
		}
		tc.m, tc.n, tc.k = pick(), pick(), pick()
		s := scal[r.IntN(len(scal))]
		tc.alpha, tc.beta = s[0], s[1]
		cases = append(cases, tc)
	}
	return cases
}

func TestSgemm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 1500
	if testing.Short() {
		n = 300
	}
	for _, tc := range gemmCases(r, n) {
		checkGemm(t, r, tc, Sgemm)
	}
}

// TestSgemmKernels drives every micro-kernel this CPU has through the packed
// path, whatever shape rule Sgemm would apply.
func TestSgemmKernels(t *testing.T) {
	if len(supportedKernels) == 0 {
		t.Skip("kernels: no SIMD micro-kernel on this CPU or build")
	}
	defer func(d bool) { useDirect = d }(useDirect)
	for _, kern := range supportedKernels {
		for _, direct := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/direct=%v", kern.name, direct), func(t *testing.T) {
				useDirect = direct
				r := rand.New(rand.NewPCG(3, 4))
				n := 1500
				if testing.Short() {
					n = 300
				}
				cases := gemmCases(r, n)
				// Deep and large products cross the kc blocking and the
				// parallel threshold.
				cases = append(cases,
					gemmCase{m: 67, n: 65, k: 600, alpha: 1, beta: 0.5},
					gemmCase{transA: true, transB: true, m: 130, n: 97, k: 300, alpha: 1, beta: 0, pad: 3},
					gemmCase{transB: true, m: 200, n: 20, k: 513, alpha: 0.5, beta: 1},
				)
				for _, tc := range cases {
					checkGemm(t, r, tc, func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
						sgemmPacked(kern, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
					})
				}
			})
		}
	}
}

// TestSgemmDirectBitIdentical checks that reading A unpacked changes no bit
// of the result.
func TestSgemmDirectBitIdentical(t *testing.T) {
	defer func(d bool) { useDirect = d }(useDirect)
	r := rand.New(rand.NewPCG(7, 8))
	for _, kern := range supportedKernels {
		for _, sh := range [][3]int{{37, 70, 300}, {128, 256, 784}, {64, 16, 513}} {
			m, n, k := sh[0], sh[1], sh[2]
			a, b := randSlice(r, m*k+5), randSlice(r, k*n)
			c0 := randSlice(r, m*n)
			var out [2][]float32
			for i, d := range []bool{false, true} {
				useDirect = d
				out[i] = append([]float32(nil), c0...)
				sgemmPacked(kern, false, true, m, n, k, 0.7, a, k+0, b, k, 0.5, out[i], n, nil)
			}
			for i := range out[0] {
				if math.Float32bits(out[0][i]) != math.Float32bits(out[1][i]) {
					t.Fatalf("%s %v: element %d: packed %g, direct %g", kern.name, sh, i, out[0][i], out[1][i])
				}
			}
		}
	}
}

func TestSgemmReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range gemmCases(r, 200) {
		checkGemm(t, r, tc, sgemmRef)
	}
}

func TestSgemmZeroSizes(t *testing.T) {
	nan := float32(math.NaN())
	for _, tc := range []struct {
		m, n, k     int
		alpha, beta float32
		want        []float32
	}{
		{2, 2, 0, 1, 0, []float32{0, 0, 0, 0}},
		{2, 2, 0, 1, 2, []float32{2, 4, 6, 8}},
		{2, 2, 3, 0, 1, []float32{1, 2, 3, 4}},
	} {
		c := []float32{1, 2, 3, 4}
		if tc.beta == 0 {
			c = []float32{nan, nan, nan, nan}
		}
		a := make([]float32, max(1, tc.m*tc.k))
		b := make([]float32, max(1, tc.k*tc.n))
		for i := range a {
			a[i] = nan
		}
		Sgemm(false, false, tc.m, tc.n, tc.k, tc.alpha, a, max(1, tc.k), b, tc.n, tc.beta, c, tc.n)
		for i := range c {
			if c[i] != tc.want[i] {
				t.Errorf("m=%d n=%d k=%d alpha=%g beta=%g: C = %v, want %v", tc.m, tc.n, tc.k, tc.alpha, tc.beta, c, tc.want)
				break
			}
		}
	}
	Sgemm(false, false, 0, 5, 5, 1, nil, 5, make([]float32, 25), 5, 0, nil, 5)
}

func TestSgemmPanicsOnShortSlices(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"short a", func() {
			Sgemm(false, false, 4, 4, 4, 1, make([]float32, 15), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4)
		}},
		{"short c", func() {
			Sgemm(false, false, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 4, 0, make([]float32, 15), 4)
		}},
		{"small ldb", func() {
			Sgemm(false, true, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 3, 0, make([]float32, 16), 4)
		}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
}

// TestSgemmDeterministic checks that results are bit-identical whatever
// GOMAXPROCS is.
func TestSgemmDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	shapes := []gemmCase{
		{m: 128, n: 256, k: 784, alpha: 1},
		{transB: true, m: 130, n: 250, k: 300, alpha: 1, beta: 1},
		{transA: true, m: 256, n: 100, k: 128, alpha: 1},
		{m: 300, n: 16, k: 256, alpha: 1},
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range shapes {
		ar, ac := tc.m, tc.k
		if tc.transA {
			ar, ac = ac, ar
		}
		br, bc := tc.k, tc.n
		if tc.transB {
			br, bc = bc, br
		}
		a, b, c0 := randSlice(r, ar*ac), randSlice(r, br*bc), randSlice(r, tc.m*tc.n)
		var prev []float32
		for _, procs := range []int{1, 2, 3, 8} {
			runtime.GOMAXPROCS(procs)
			c := append([]float32(nil), c0...)
			Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, ac, b, bc, tc.beta, c, tc.n)
			if prev != nil {
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(prev[i]) {
						t.Fatalf("%v: GOMAXPROCS=%d differs at %d: %g vs %g", tc, procs, i, c[i], prev[i])
					}
				}
			}
			prev = c
		}
	}
}

func TestMeasureSgemm(t *testing.T) {
	for _, s := range PerfShapes()[:1] {
		if g := MeasureSgemm(s, time.Millisecond); !(g > 0) || math.IsInf(g, 0) {
			t.Errorf("MeasureSgemm(%s) = %g GFLOP/s", s.Name, g)
		}
	}
}

// TestSgemmConcurrent runs products from several goroutines at once, as
// callers that parallelise over heads or batches do; each must match the
// same product run alone.
func TestSgemmConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	const m, n, k, calls = 150, 140, 300, 6
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	want := make([]float32, m*n)
	Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, want, n)
	got := make([][]float32, calls)
	done := make(chan int)
	for g := range calls {
		go func() {
			got[g] = make([]float32, m*n)
			Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, got[g], n)
			done <- g
		}()
	}
	for range calls {
		g := <-done
		for i := range want {
			if math.Float32bits(got[g][i]) != math.Float32bits(want[i]) {
				t.Fatalf("call %d differs at %d: %g vs %g", g, i, got[g][i], want[i])
			}
		}
	}
}

// TestSgemmPackedBBitIdentical checks that a product against a B packed
// once (PackB) equals Sgemm's bit for bit, for both layouts of B, with
// several depth blocks (k > kcMax), partial panels, and row counts that
// pick another kernel than the one packed for (the fallback). Catches a
// wrong depth-block offset into the packed data, a B packed with the
// wrong transpose, and a kernel mismatch.
func TestSgemmPackedBBitIdentical(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, transB := range []bool{false, true} {
		for _, sh := range [][3]int{{83, 300, 128}, {40, 70, 600}, {50, 33, 257}} {
			packM, n, k := sh[0], sh[1], sh[2]
			ldb := n
			if transB {
				ldb = k
			}
			b := randSlice(r, k*n)
			buf := make([]float32, PackedBSize(packM, n, k))
			pb := PackB(transB, packM, n, k, b, ldb, buf)
			for _, m := range []int{packM, 7, 1, 2 * packM} {
				for _, transA := range []bool{false, true} {
					lda := k
					if transA {
						lda = m
					}
					a := randSlice(r, m*k)
					c0 := randSlice(r, m*n)
					want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
					Sgemm(transA, transB, m, n, k, 0.7, a, lda, b, ldb, 0.5, want, n)
					SgemmPackedB(transA, m, 0.7, a, lda, pb, 0.5, got, n)
					for i := range want {
						if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
							t.Fatalf("transB %v %v m=%d transA %v: element %d: Sgemm %g, packed B %g", transB, sh, m, transA, i, want[i], got[i])
						}
					}
				}
			}
		}
	}
}
