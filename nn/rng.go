package nn

import (
	"hash/fnv"
	"math"
	"math/bits"
)

// RNG is a deterministic random stream (xoshiro256**, seeded by SplitMix64).
// Its output for a given seed and purpose is fixed by this package, not by
// the Go release, so trials replay bit for bit.
type RNG struct {
	s [4]uint64
}

// NewRNG returns the stream for one purpose ("init", "data", "dropout", …)
// of one trial seed. Different purposes give independent streams, so e.g.
// changing the data order leaves the initialisation unchanged.
func NewRNG(seed uint64, purpose string) *RNG {
	h := fnv.New64a()
	h.Write([]byte(purpose))
	x := seed ^ bits.RotateLeft64(h.Sum64(), 17)
	r := &RNG{}
	for i := range r.s {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		r.s[i] = z ^ (z >> 31)
	}
	return r
}

// Child returns an independent stream derived from r's next output and name.
func (r *RNG) Child(name string) *RNG { return NewRNG(r.Uint64(), name) }

// Uint64 returns 64 uniformly random bits.
func (r *RNG) Uint64() uint64 {
	s := &r.s
	res := bits.RotateLeft64(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = bits.RotateLeft64(s[3], 45)
	return res
}

// Float32 returns a uniform value in [0, 1).
func (r *RNG) Float32() float32 { return float32(r.Uint64()>>40) * (1.0 / (1 << 24)) }

// Float64 returns a uniform value in [0, 1).
func (r *RNG) Float64() float64 { return float64(r.Uint64()>>11) * (1.0 / (1 << 53)) }

// Uniform returns a uniform value in [lo, hi).
func (r *RNG) Uniform(lo, hi float32) float32 {
	return float32(float64(lo) + float64(hi-lo)*r.Float64())
}

// Norm returns a standard normal value (Box–Muller).
func (r *RNG) Norm() float32 {
	u1 := 1 - r.Float64() // (0, 1]
	u2 := r.Float64()
	return float32(math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2))
}

// Intn returns a uniform integer in [0, n); n must be positive.
func (r *RNG) Intn(n int) int {
	if n <= 0 {
		panic("nn: RNG.Intn: n <= 0")
	}
	hi, _ := bits.Mul64(r.Uint64(), uint64(n))
	return int(hi)
}

// Perm returns a uniform random permutation of [0, n).
func (r *RNG) Perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r.Shuffle(p)
	return p
}

// Shuffle permutes p uniformly in place (Fisher–Yates).
func (r *RNG) Shuffle(p []int) {
	for i := len(p) - 1; i > 0; i-- {
		j := r.Intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
}

// FillUniform fills t with values uniform in [lo, hi).
func (r *RNG) FillUniform(t *Tensor, lo, hi float32) {
	for i := range t.Data {
		t.Data[i] = r.Uniform(lo, hi)
	}
}

// FillNormal fills t with values drawn from N(mean, std²).
func (r *RNG) FillNormal(t *Tensor, mean, std float32) {
	for i := range t.Data {
		t.Data[i] = mean + std*r.Norm()
	}
}

// KaimingUniform fills t like torch's kaiming_uniform_(a=√5) with the given
// fan-in: U(−b, b), b = √(6/((1+a²)·fanIn)) = 1/√fanIn. This is the default
// init of torch's nn.Linear weight and of LoRA's A.
func (r *RNG) KaimingUniform(t *Tensor, fanIn int) {
	b := float32(1 / math.Sqrt(float64(fanIn)))
	r.FillUniform(t, -b, b)
}
