package nn

// TorchGenerator reproduces PyTorch's CPU generator (torch.Generator with
// manual_seed: a 32-bit Mersenne Twister, MT19937) and the draws of
// Tensor.uniform_ on a float32 tensor, bit for bit. Methods whose
// published code draws fixed projections from a seeded torch.Generator
// (VeRA's projection_prng_key) use it, so the builtin engine and HF PEFT
// start from identical matrices.
type TorchGenerator struct {
	mt   [624]uint32
	left int
	next int
}

// NewTorchGenerator returns the generator of
// torch.Generator().manual_seed(seed).
func NewTorchGenerator(seed uint64) *TorchGenerator {
	g := &TorchGenerator{}
	g.mt[0] = uint32(seed)
	for j := 1; j < len(g.mt); j++ {
		g.mt[j] = 1812433253*(g.mt[j-1]^(g.mt[j-1]>>30)) + uint32(j)
	}
	g.left, g.next = 1, 0
	return g
}

// Uint32 returns the generator's next 32 random bits (torch's random()).
func (g *TorchGenerator) Uint32() uint32 {
	g.left--
	if g.left == 0 {
		g.twist()
	}
	y := g.mt[g.next]
	g.next++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

func (g *TorchGenerator) twist() {
	const n, m = 624, 397
	mix := func(u, v uint32) uint32 {
		y := (u & 0x80000000) | (v & 0x7fffffff)
		y = y >> 1
		if v&1 != 0 {
			y ^= 0x9908b0df
		}
		return y
	}
	for i := range n {
		g.mt[i] = g.mt[(i+m)%n] ^ mix(g.mt[i], g.mt[(i+1)%n])
	}
	g.left, g.next = n, 0
}

// FillUniform fills t in memory order as t.uniform_(from, to,
// generator=g) does for a contiguous float32 tensor on the CPU: the low 24
// bits of each draw scaled to [0, 1), then u·(to − from) + from in float64
// with from, to and their difference rounded to float32 first (ATen's
// uniform_real), rounded to float32.
func (g *TorchGenerator) FillUniform(t *Tensor, from, to float64) {
	lo, hi := float32(from), float32(to)
	width := float64(hi - lo)
	for i := range t.Data {
		u := float64(g.Uint32()&(1<<24-1)) / (1 << 24)
		// float64(·) rounds the product: no fused multiply-add.
		t.Data[i] = float32(float64(u*width) + float64(lo))
	}
}

// Randperm returns torch.randperm(n, generator=g) for the CPU generator:
// 0..n−1 shuffled by ATen's Fisher–Yates, swapping element i with element
// i + random() mod (n − i) for i = 0..n−2, one 32-bit draw per swap (the
// algorithm ATen keeps for n below 2³²/20). Methods that choose fixed random
// positions from a seed as HF PEFT does (FourierFT's spectral entries,
// SHiRA's random mask) use it to choose the same ones.
func (g *TorchGenerator) Randperm(n int) []int {
	if n >= (1<<32-1)/20 {
		panic("nn: Randperm: n too large for the 32-bit algorithm")
	}
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := 0; i < n-1; i++ {
		z := int(uint64(g.Uint32()) % uint64(n-i))
		p[i], p[i+z] = p[i+z], p[i]
	}
	return p
}
