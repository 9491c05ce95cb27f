package sweeps

// A Sobol sequence in base 2 with the direction numbers of Joe and Kuo
// (new-joe-kuo-6.21201, https://web.maths.unsw.edu.au/~fkuo/sobol/: S. Joe
// and F. Y. Kuo, Constructing Sobol sequences with better two-dimensional
// projections, SIAM J. Sci. Comput. 30, 2635–2654, 2008), generated in
// Gray-code order (Antonov–Saleev), 32 bits per coordinate, for up to
// sobolMaxDim dimensions: dimension 1 is van der Corput's, dimensions 2–20
// the first 19 rows of the file. Unshifted, it is the sequence SciPy's
// qmc.Sobol(scramble=False) draws.

// sobolMaxDim is the number of dimensions joeKuo supports.
const sobolMaxDim = 20

const sobolBits = 32

// joeKuo holds, for dimensions 2, 3, …, the degree s of the primitive
// polynomial, its interior coefficients a and the initial direction
// numbers m₁…mₛ.
var joeKuo = []struct {
	s, a uint32
	m    []uint32
}{
	{1, 0, []uint32{1}},
	{2, 1, []uint32{1, 3}},
	{3, 1, []uint32{1, 3, 1}},
	{3, 2, []uint32{1, 1, 1}},
	{4, 1, []uint32{1, 1, 3, 3}},
	{4, 4, []uint32{1, 3, 5, 13}},
	{5, 2, []uint32{1, 1, 5, 5, 17}},
	{5, 4, []uint32{1, 1, 5, 5, 5}},
	{5, 7, []uint32{1, 1, 7, 11, 19}},
	{5, 11, []uint32{1, 1, 5, 1, 1}},
	{5, 13, []uint32{1, 1, 1, 3, 11}},
	{5, 14, []uint32{1, 3, 5, 5, 31}},
	{6, 1, []uint32{1, 3, 3, 9, 7, 49}},
	{6, 13, []uint32{1, 1, 1, 15, 21, 21}},
	{6, 16, []uint32{1, 3, 1, 13, 27, 49}},
	{6, 19, []uint32{1, 1, 1, 15, 7, 5}},
	{6, 22, []uint32{1, 3, 1, 15, 13, 25}},
	{6, 25, []uint32{1, 1, 5, 5, 19, 61}},
	{7, 1, []uint32{1, 3, 7, 11, 23, 15, 103}},
}

// sobol generates the sequence point by point.
type sobol struct {
	v [][sobolBits]uint32 // direction numbers V_k = m_k·2^(32−k), per dimension
	x []uint32            // the current point
	i uint32              // its index
}

func newSobol(dim int) *sobol {
	q := &sobol{v: make([][sobolBits]uint32, dim), x: make([]uint32, dim)}
	for j := range dim {
		m := make([]uint32, sobolBits)
		if j == 0 {
			for k := range m {
				m[k] = 1
			}
		} else {
			jk := joeKuo[j-1]
			s := int(jk.s)
			copy(m, jk.m)
			for k := s; k < sobolBits; k++ {
				// m_k = 2a₁m_{k−1} ⊕ 4a₂m_{k−2} ⊕ … ⊕ 2^(s−1)a_{s−1}m_{k−s+1} ⊕ 2^s m_{k−s} ⊕ m_{k−s}
				mk := m[k-s] ^ m[k-s]<<s
				for i := 1; i < s; i++ {
					if jk.a>>(s-1-i)&1 == 1 {
						mk ^= m[k-i] << i
					}
				}
				m[k] = mk
			}
		}
		for k := range sobolBits {
			q.v[j][k] = m[k] << (sobolBits - 1 - k)
		}
	}
	return q
}

// next moves to the following point: x ⊕= V_c, c the position of the
// lowest zero bit of the current index.
func (q *sobol) next() {
	c := 0
	for q.i>>c&1 == 1 {
		c++
	}
	for j := range q.x {
		q.x[j] ^= q.v[j][c]
	}
	q.i++
}

// point returns the current point in [0, 1).
func (q *sobol) point() []float64 { return q.shifted(make([]uint32, len(q.x))) }

// shifted returns the current point under a digital shift: each coordinate's
// bits XORed with shift's. A uniformly random shift keeps the sequence's
// stratification and makes each point uniform on [0, 1).
func (q *sobol) shifted(shift []uint32) []float64 {
	out := make([]float64, len(q.x))
	for j, x := range q.x {
		out[j] = float64(x^shift[j]) / (1 << sobolBits)
	}
	return out
}
