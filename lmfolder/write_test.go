package lmfolder

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"peftbench/safetensors"
)

// TestDTypeRounding writes one seed as F32, F16 and BF16 and checks, from
// the stored bits, that each half value is the nearest representable one
// to the F32 value, ties to an even mantissa — judged by decoding the
// stored value and its two neighbours, not by calling the encoder again —
// and pins the bits of known values. Catches truncation instead of
// round-to-nearest-even, and ties rounded away from zero.
func TestDTypeRounding(t *testing.T) {
	known := []struct {
		f        float32
		f16, b16 uint16
	}{
		{1, 0x3c00, 0x3f80},
		{-2, 0xc000, 0xc000},
		{0.1, 0x2e66, 0x3dcd},
		{1 + 1.0/2048, 0x3c00, 0x3f80}, // f16 tie → even (down)
		{1 + 3.0/2048, 0x3c02, 0x3f80}, // f16 tie → even (up)
		{1 + 1.0/256, 0x3c04, 0x3f80},  // bf16 tie → even (down)
		{1 + 3.0/256, 0x3c0c, 0x3f82},  // bf16 tie → even (up)
		{65520, 0x7c00, 0x4780},        // beyond half's range → +Inf
		{float32(math.Pi), 0x4248, 0x4049},
	}
	for _, k := range known {
		if g := safetensors.F32ToF16(k.f); g != k.f16 {
			t.Errorf("F16(%v) = %#04x, want %#04x", k.f, g, k.f16)
		}
		if g := safetensors.F32ToBF16(k.f); g != k.b16 {
			t.Errorf("BF16(%v) = %#04x, want %#04x", k.f, g, k.b16)
		}
	}
	root := t.TempDir()
	read := func(dt safetensors.DType) map[string][]byte {
		dir := filepath.Join(root, string(dt))
		if _, _, err := Write(dir, Spec{Family: "qwen2", Seed: 5, DType: dt, Layers: 1, Dim: 32, Heads: 2, KVHeads: 1}); err != nil {
			t.Fatal(err)
		}
		m, err := safetensors.OpenModel(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		out := map[string][]byte{}
		for _, n := range m.Names() {
			info, _ := m.Info(n)
			if info.DType != dt {
				t.Fatalf("%s: %s stored as %s", dt, n, info.DType)
			}
			out[n], _ = m.Raw(n)
		}
		return out
	}
	f32 := read(safetensors.F32)
	for _, c := range []struct {
		dt     safetensors.DType
		decode func(uint16) float32
	}{{safetensors.F16, safetensors.F16ToF32}, {safetensors.BF16, safetensors.BF16ToF32}} {
		for name, raw := range read(c.dt) {
			ref := f32[name]
			for i := 0; 2*i < len(raw); i++ {
				x := float64(math.Float32frombits(binary.LittleEndian.Uint32(ref[4*i:])))
				b := binary.LittleEndian.Uint16(raw[2*i:])
				d := math.Abs(float64(c.decode(b)) - x)
				for _, nb := range []uint16{b + 1, b - 1} {
					if nb&0x7fff == 0x7fff || (b&0x7fff == 0 && nb == b-1) {
						continue
					}
					dn := math.Abs(float64(c.decode(nb)) - x)
					if dn < d || dn == d && b&1 == 1 {
						t.Fatalf("%s %s[%d]: %v stored as %#04x (%v), neighbour %#04x (%v) is nearer or an even tie",
							c.dt, name, i, x, b, c.decode(b), nb, c.decode(nb))
					}
				}
			}
		}
	}
}
