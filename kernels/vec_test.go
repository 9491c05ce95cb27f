package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// close32 reports whether got is within tol relative (or absolute, near
// zero) of want.
func close32(got float32, want float64, tol float64) bool {
	return math.Abs(float64(got)-want) <= tol*math.Max(1, math.Abs(want))
}

func checkSlice(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	for i := range got {
		if !close32(got[i], want[i], tol) {
			t.Fatalf("%s[%d] = %g, want %g", name, i, got[i], want[i])
		}
	}
}

var vecLens = []int{0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 257}

func TestAxpyDotScaleAddMul(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range vecLens {
		x, y := randSlice(r, n), randSlice(r, n)
		const alpha = 0.75
		want := make([]float64, n)
		var dot float64
		for i := range want {
			want[i] = float64(y[i]) + alpha*float64(x[i])
			dot += float64(x[i]) * float64(y[i])
		}
		if got := Dot(x, y); !close32(got, dot, 1e-5*float64(n+1)) {
			t.Errorf("n=%d: Dot = %g, want %g", n, got, dot)
		}
		wantMax := float32(math.Inf(-1))
		for _, v := range x {
			wantMax = max(wantMax, v)
		}
		if got := Max(x); got != wantMax {
			t.Errorf("n=%d: Max = %g, want %g", n, got, wantMax)
		}
		sum, prod := make([]float32, n), make([]float32, n)
		Add(sum, x, y)
		Mul(prod, x, y)
		for i := range x {
			if sum[i] != x[i]+y[i] || prod[i] != x[i]*y[i] {
				t.Fatalf("n=%d: Add/Mul differ at %d", n, i)
			}
		}
		Axpy(alpha, x, y)
		checkSlice(t, "Axpy", y, want, 1e-6)
		for i := range want {
			want[i] = float64(x[i]) * -3
		}
		Scale(-3, x)
		checkSlice(t, "Scale", x, want, 1e-6)
	}
}

// TestAdamW follows torch.optim.AdamW (non-amsgrad) in float64 over several
// steps.
func TestAdamW(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range vecLens {
		p, m, v := randSlice(r, n), make([]float32, n), make([]float32, n)
		p64, m64, v64 := make([]float64, n), make([]float64, n), make([]float64, n)
		for i := range p {
			p64[i] = float64(p[i])
		}
		const lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.1
		for step := 1; step <= 5; step++ {
			g := randSlice(r, n)
			bc1, bc2 := 1-math.Pow(b1, float64(step)), 1-math.Pow(b2, float64(step))
			AdamW(p, g, m, v, lr, b1, b2, eps, wd, float32(bc1), float32(bc2))
			for i := range p64 {
				gi := float64(g[i])
				p64[i] *= 1 - lr*wd
				m64[i] = b1*m64[i] + (1-b1)*gi
				v64[i] = b2*v64[i] + (1-b2)*gi*gi
				p64[i] -= lr / bc1 * m64[i] / (math.Sqrt(v64[i])/math.Sqrt(bc2) + eps)
			}
		}
		checkSlice(t, "AdamW p", p, p64, 1e-5)
		checkSlice(t, "AdamW m", m, m64, 1e-5)
		checkSlice(t, "AdamW v", v, v64, 1e-5)
	}
}

func TestSoftmaxRows(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, cols := range []int{1, 2, 7, 16, 33} {
		rows := 3
		x := randSlice(r, rows*cols)
		x[0] = 80 // large values must not overflow
		y := make([]float32, len(x))
		SoftmaxRows(y, x, cols)
		want := make([]float64, len(x))
		for i := 0; i < rows; i++ {
			row := x[i*cols : (i+1)*cols]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v) - mx)
			}
			for j, v := range row {
				want[i*cols+j] = math.Exp(float64(v)-mx) / s
			}
		}
		checkSlice(t, "SoftmaxRows", y, want, 1e-6)
	}
}

func gelu64(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

func TestGELU(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range vecLens {
		x, dy := randSlice(r, n), randSlice(r, n)
		for i := range x {
			x[i] *= 4
		}
		y, dx := make([]float32, n), make([]float32, n)
		GELU(y, x)
		GELUBackward(dx, x, dy)
		want, dwant := make([]float64, n), make([]float64, n)
		for i, v := range x {
			want[i] = gelu64(float64(v))
			const h = 1e-6
			dwant[i] = float64(dy[i]) * (gelu64(float64(v)+h) - gelu64(float64(v)-h)) / (2 * h)
		}
		checkSlice(t, "GELU", y, want, 1e-6)
		checkSlice(t, "GELUBackward", dx, dwant, 1e-5)
	}
}

func TestReluSumRows(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, cols := range []int{1, 5, 16, 19} {
		rows := 3
		x, dy := randSlice(r, rows*cols), randSlice(r, rows*cols)
		y := make([]float32, len(x))
		Relu(y, x)
		acc := randSlice(r, len(x))
		acc0 := append([]float32(nil), acc...)
		ReluBackwardAdd(acc, y, dy)
		sums := make([]float32, cols)
		SumRows(sums, dy, cols)
		wantSums := make([]float64, cols)
		for i := range x {
			j := i % cols
			if y[i] != max(x[i], 0) {
				t.Fatalf("cols=%d: Relu at %d: %g for %g", cols, i, y[i], x[i])
			}
			wd := float32(0)
			if x[i] > 0 {
				wd = dy[i]
			}
			if want := acc0[i] + wd; acc[i] != want {
				t.Fatalf("cols=%d: ReluBackwardAdd at %d = %g, want %g", cols, i, acc[i], want)
			}
			wantSums[j] += float64(dy[i])
		}
		checkSlice(t, "SumRows", sums, wantSums, 1e-5)
	}
}

func TestRowKernelsPanicOnRaggedRows(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("SoftmaxRows accepted len 5 with cols 2")
		}
	}()
	SoftmaxRows(make([]float32, 5), make([]float32, 5), 2)
}

// TestSpecialValues covers masked (−Inf) softmax entries, NaN propagation
// and extreme GELU inputs, in both the vector body and the scalar tail.
func TestSpecialValues(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	x := make([]float32, 19)
	for i := range x {
		x[i] = float32(i) / 4
		if i%3 == 1 {
			x[i] = -inf
		}
	}
	y := make([]float32, len(x))
	SoftmaxRows(y, x, len(x))
	var s float64
	for i, v := range y {
		if x[i] == -inf && v != 0 {
			t.Errorf("softmax of masked entry %d = %g, want 0", i, v)
		}
		s += float64(v)
	}
	if math.Abs(s-1) > 1e-6 {
		t.Errorf("softmax sums to %g", s)
	}
	x[2], x[17] = nan, 0
	SoftmaxRows(y, x, len(x))
	if !math.IsNaN(float64(y[0])) {
		t.Errorf("softmax of a row with NaN = %g, want NaN", y[0])
	}

	g := []float32{-100, -20, -1e-3, 0, 1e-3, 20, 100, 3e4, -3e4, 5}
	g = append(g, g...)
	out, dx, ones := make([]float32, len(g)), make([]float32, len(g)), make([]float32, len(g))
	for i := range ones {
		ones[i] = 1
	}
	GELU(out, g)
	GELUBackward(dx, g, ones)
	for i, v := range g {
		want := gelu64(float64(v))
		if !close32(out[i], want, 1e-6) {
			t.Errorf("GELU(%g) = %g, want %g", v, out[i], want)
		}
		if math.IsNaN(float64(dx[i])) || math.IsInf(float64(dx[i]), 0) {
			t.Errorf("GELUBackward(%g) = %g", v, dx[i])
		}
	}
}

// TestExpAccuracy bounds the error of the exp used by SoftmaxRows over the
// range softmax sees, against math.Exp.
func TestExpAccuracy(t *testing.T) {
	const n = 1 << 14
	x := make([]float32, n)
	for i := range x {
		x[i] = -87 + 175*float32(i)/n
	}
	y := make([]float32, n)
	expShift(y, x, 0)
	worst := 0.0
	for i, v := range x {
		want := math.Exp(float64(v))
		if e := math.Abs(float64(y[i])-want) / want; e > worst {
			worst = e
		}
	}
	if worst > 4e-7 {
		t.Errorf("exp: worst relative error %.3g > 4e-7", worst)
	}
}

func TestReluKeepsNaN(t *testing.T) {
	x := make([]float32, 19)
	for i := range x {
		x[i] = float32(i) - 9
	}
	x[3], x[12] = float32(math.NaN()), float32(math.NaN())
	y := make([]float32, len(x))
	Relu(y, x)
	for i, v := range x {
		if v != v {
			if y[i] == y[i] {
				t.Errorf("Relu(NaN) at %d = %g, want NaN", i, y[i])
			}
		} else if y[i] != max(v, 0) {
			t.Errorf("Relu(%g) = %g", v, y[i])
		}
	}
}

// TestErfGELUErf checks the float32 Erf against math.Erf on a grid over
// [−6, 6] (absolute 5e-7, relative 5e-7 below |x| = 0.5), and the exact
// GELU and its derivative against float64 formulas: relative 2e-6 for
// the GELU (the negative tail included, where 1 + erf cancels) and 2e-6
// of max(1, |d|) for the derivative. Catches a wrong coefficient, a
// missing clamp (NaN past ±4), a cdf computed through the cancelling
// 1 + erf in the tail, and a wrong derivative term.
func TestErfGELUErf(t *testing.T) {
	var xs []float32
	for i := -60000; i <= 60000; i++ {
		xs = append(xs, float32(i)*1e-4)
	}
	xs = append(xs, 30, -30, 1e-20, -1e-20, 0)
	for _, x := range xs {
		want := math.Erf(float64(x))
		got := float64(Erf(x))
		tol := 5e-7
		if math.Abs(float64(x)) < 0.5 {
			tol = 5e-7 * math.Abs(want)
		}
		if math.Abs(got-want) > tol || math.IsNaN(got) {
			t.Fatalf("Erf(%g) = %g, want %g", x, got, want)
		}
	}
	y, dx, dy := make([]float32, len(xs)), make([]float32, len(xs)), make([]float32, len(xs))
	for i := range dy {
		dy[i] = 1
	}
	GELUErf(y, xs)
	GELUErfBackwardAdd(dx, xs, dy)
	for i, x := range xs {
		f := float64(x)
		cdf := 0.5 * math.Erfc(-f/math.Sqrt2)
		want := f * cdf
		if math.Abs(float64(y[i])-want) > 2e-6*math.Abs(want)+1e-37 { // float32 underflow floor
			t.Fatalf("GELUErf(%g) = %g, want %g", x, y[i], want)
		}
		d := cdf + f*math.Exp(-0.5*f*f)/math.Sqrt(2*math.Pi)
		if math.Abs(float64(dx[i])-d) > 2e-6*math.Max(1, math.Abs(d)) {
			t.Fatalf("GELUErf'(%g) = %g, want %g", x, dx[i], d)
		}
	}
}
