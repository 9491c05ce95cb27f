package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestF16ToF32(t *testing.T) {
	for _, tc := range []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.333251953125},
		{0x7bff, 65504},                          // largest finite
		{0x0400, float32(math.Ldexp(1, -14))},    // smallest normal
		{0x0001, float32(math.Ldexp(1, -24))},    // smallest subnormal
		{0x03ff, float32(math.Ldexp(1023, -24))}, // largest subnormal
		{0x8001, float32(-math.Ldexp(1, -24))},
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
	} {
		if got := F16ToF32(tc.h); got != tc.want {
			t.Errorf("F16ToF32(%#04x) = %g, want %g", tc.h, got, tc.want)
		}
	}
	if got := math.Float32bits(F16ToF32(0x8000)); got != 0x80000000 {
		t.Errorf("F16ToF32(-0) bits = %#08x, want negative zero", got)
	}
	for _, h := range []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff} {
		if got := F16ToF32(h); !math.IsNaN(float64(got)) {
			t.Errorf("F16ToF32(%#04x) = %g, want NaN", h, got)
		}
	}
}

// TestF16RoundTrip checks every half value survives half → float32 → half
// bit for bit, NaN payloads included.
func TestF16RoundTrip(t *testing.T) {
	for h := range 1 << 16 {
		if got := F32ToF16(F16ToF32(uint16(h))); got != uint16(h) {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, got)
		}
	}
}

func TestF32ToF16Rounding(t *testing.T) {
	ld := func(m float64, e int) float32 { return float32(math.Ldexp(m, e)) }
	for _, tc := range []struct {
		f    float32
		want uint16
	}{
		{1 + ld(1, -11), 0x3c00},              // tie, to even (down)
		{1 + ld(3, -11), 0x3c02},              // tie, to even (up)
		{1 + ld(1, -11) + ld(1, -20), 0x3c01}, // above the tie
		{65519, 0x7bff},                       // below the tie with 65536
		{65520, 0x7c00},                       // tie, to even: overflows to Inf
		{1e10, 0x7c00},
		{-1e10, 0xfc00},
		{ld(1, -25), 0x0000},              // tie between 0 and the smallest subnormal
		{ld(1, -25) + ld(1, -40), 0x0001}, // just above it
		{ld(3, -25), 0x0002},              // tie between 1 and 2 subnormal units
		{ld(1, -26), 0x0000},
		{ld(1023.5, -24), 0x0400}, // largest subnormal rounds up into the normals
		{ld(1, -140), 0x0000},     // float32 subnormal
		{float32(math.Inf(1)), 0x7c00},
	} {
		if got := F32ToF16(tc.f); got != tc.want {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tc.f, got, tc.want)
		}
	}
	if got := F32ToF16(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("F32ToF16(NaN) = %#04x, want a NaN", got)
	}
	// A NaN whose payload lives only in the low bits stays NaN.
	if got := F32ToF16(math.Float32frombits(0x7f800001)); got&0x3ff == 0 {
		t.Errorf("F32ToF16(NaN 0x7f800001) = %#04x, want a NaN", got)
	}
}

func TestBF16(t *testing.T) {
	for _, tc := range []struct {
		bits uint32
		want uint16
	}{
		{0x3f800000, 0x3f80},
		{0x3f808000, 0x3f80}, // tie, to even (down)
		{0x3f818000, 0x3f82}, // tie, to even (up)
		{0x3f808001, 0x3f81},
		{0x7f7fffff, 0x7f80}, // rounds to Inf
		{0x00000001, 0x0000},
		{0x00010000, 0x0001}, // bf16 subnormal, exact
		{0xff800000, 0xff80},
		{0x7fc00000, 0x7fc0},
		{0x7f800001, 0x7fc0}, // signalling NaN becomes quiet, stays NaN
	} {
		if got := F32ToBF16(math.Float32frombits(tc.bits)); got != tc.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", tc.bits, got, tc.want)
		}
	}
	for h := range 1 << 16 {
		f := BF16ToF32(uint16(h))
		if math.Float32bits(f) != uint32(h)<<16 {
			t.Fatalf("BF16ToF32(%#04x) bits = %#08x", h, math.Float32bits(f))
		}
		if got := F32ToBF16(f); got != uint16(h) && !math.IsNaN(float64(f)) {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", h, got)
		}
	}
}

// python returns the interpreter for PyTorch cross-checks, or skips.
func python(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("PyTorch cross-check skipped in -short mode")
	}
	py := os.Getenv("PEFTBENCH_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	if out, err := exec.Command(py, "-c", "import torch, numpy").CombinedOutput(); err != nil {
		t.Skipf("no PyTorch at %s (set PEFTBENCH_PYTHON): %v: %s", py, err, bytes.TrimSpace(out))
	}
	return py
}

// TestHalfConversionMatchesTorch converts random and special float32 values
// with PyTorch (float16 and bfloat16, round to nearest even) and compares.
func TestHalfConversionMatchesTorch(t *testing.T) {
	py := python(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var vals []uint32
	for range 20000 {
		vals = append(vals, rng.Uint32())
	}
	for range 20000 { // concentrated on the half range, ties included
		e := uint32(100 + rng.IntN(50))
		m := rng.Uint32() & 0x7fffff
		if rng.IntN(4) == 0 {
			m = m&^0x1fff | 0x1000 // an F16 tie
		}
		vals = append(vals, rng.Uint32()&0x80000000|e<<23|m)
	}
	vals = append(vals, 0, 0x80000000, 0x7f800000, 0xff800000, 0x477fefff, 0x477ff000, 0x33000000, 0x33000001)
	in := filepath.Join(t.TempDir(), "in.bin")
	var b []byte
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`
import sys, numpy as np, torch
x = torch.from_numpy(np.fromfile(%q, dtype="<f4"))
sys.stdout.buffer.write(x.to(torch.float16).numpy().tobytes())
sys.stdout.buffer.write(x.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes())
`, in)
	out, err := exec.Command(py, "-c", script).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	if len(out) != 4*len(vals) {
		t.Fatalf("python wrote %d bytes, want %d", len(out), 4*len(vals))
	}
	bad := 0
	for i, v := range vals {
		f := math.Float32frombits(v)
		if math.IsNaN(float64(f)) {
			continue
		}
		h := binary.LittleEndian.Uint16(out[2*i:])
		bf := binary.LittleEndian.Uint16(out[2*len(vals)+2*i:])
		if got := F32ToF16(f); got != h {
			t.Errorf("F32ToF16(%#08x) = %#04x, torch %#04x", v, got, h)
			bad++
		}
		if got := F32ToBF16(f); got != bf {
			t.Errorf("F32ToBF16(%#08x) = %#04x, torch %#04x", v, got, bf)
			bad++
		}
		if bad > 10 {
			t.FailNow()
		}
	}
}
