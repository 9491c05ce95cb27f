package nn

import (
	"math"
	"testing"
)

func TestRNGStreams(t *testing.T) {
	a, b := NewRNG(42, "init"), NewRNG(42, "init")
	for range 100 {
		if a.Uint64() != b.Uint64() {
			t.Fatal("same seed and purpose gave different streams")
		}
	}
	for _, other := range []*RNG{NewRNG(42, "data"), NewRNG(43, "init")} {
		x, y := NewRNG(42, "init"), other
		same := 0
		for range 100 {
			if x.Uint64() == y.Uint64() {
				same++
			}
		}
		if same > 0 {
			t.Errorf("%d of 100 outputs shared between distinct streams", same)
		}
	}
}

// TestRNGGolden pins the stream: a change to the generator or its seeding
// would silently change every trial's initialisation and data order, so it
// must fail loudly (and come with new baselines).
func TestRNGGolden(t *testing.T) {
	r := NewRNG(1, "init")
	got := [3]uint64{r.Uint64(), r.Uint64(), r.Uint64()}
	want := [3]uint64{0xc1a403b5c160e4d3, 0x70f204f4076c889e, 0xfb6fbb3b84001808}
	if got != want {
		t.Errorf("NewRNG(1, \"init\") gives %#x, want %#x", got, want)
	}
}

func TestRNGDistributions(t *testing.T) {
	r := NewRNG(7, "test")
	const n = 200000
	var sum, sq float64
	for range n {
		v := float64(r.Norm())
		sum += v
		sq += v * v
	}
	mean, vr := sum/n, sq/n-(sum/n)*(sum/n)
	if math.Abs(mean) > 0.01 || math.Abs(vr-1) > 0.02 {
		t.Errorf("Norm: mean %v, variance %v; want 0 and 1", mean, vr)
	}
	counts := make([]int, 7)
	for range 70000 {
		u := r.Float32()
		if u < 0 || u >= 1 {
			t.Fatalf("Float32 = %v outside [0,1)", u)
		}
		counts[r.Intn(7)]++
	}
	for i, c := range counts {
		if c < 9500 || c > 10500 {
			t.Errorf("Intn(7): value %d drawn %d times of 70000", i, c)
		}
	}
	p := r.Perm(50)
	seen := make([]bool, 50)
	for _, v := range p {
		if seen[v] {
			t.Fatalf("Perm repeats %d", v)
		}
		seen[v] = true
	}
}

func TestKaimingUniform(t *testing.T) {
	w := New(64, 100)
	NewRNG(1, "init").KaimingUniform(w, 100)
	var lo, hi float32
	for _, v := range w.Data {
		lo, hi = min(lo, v), max(hi, v)
	}
	// torch: bound = gain·√(3/fan_in), gain = √(2/(1+5)) → 1/√fan_in = 0.1.
	if lo < -0.1 || hi >= 0.1 || lo > -0.09 || hi < 0.09 {
		t.Errorf("range [%v, %v], want to fill [-0.1, 0.1)", lo, hi)
	}
}
