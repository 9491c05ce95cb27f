package nn

import (
	"fmt"
	"math"
	"sync"
)

// Rotary holds the tables of rotary position embeddings (RoPE) in the
// half-split convention of GPT-NeoX and Hugging Face's Llama family: within
// each head of HeadDim columns, the first Dims are rotated and the rest pass
// through (partial rotary, Pythia's rotary_pct), and column i < Dims/2 pairs
// with column i + Dims/2 (rotate_half), not with its neighbour (the
// interleaved convention of the original Llama code).
//
// The frequencies are computed in float32 exactly as transformers does:
// inv_freq[i] = 1 / θ^(float32(2i)/float32(Dims)), the angle of position p
// is float32(p)·inv_freq[i] in float32, and cos and sin are rounded to
// float32 (torch evaluates them in float32 to within an ulp).
type Rotary struct {
	HeadDim, Dims int
	Theta         float64

	inv      []float32
	mu       sync.Mutex
	cos, sin []float32 // [position][Dims/2], grown on demand
}

// NewRotary returns the rotary tables for heads of headDim columns whose
// first dims (even, ≤ headDim) are rotated with base theta.
func NewRotary(headDim, dims int, theta float64) *Rotary {
	if dims < 0 || dims > headDim || dims%2 != 0 || theta <= 0 {
		panic(fmt.Sprintf("nn: NewRotary: head dim %d, rotary dims %d, theta %g", headDim, dims, theta))
	}
	r := &Rotary{HeadDim: headDim, Dims: dims, Theta: theta}
	half := dims / 2
	r.inv = make([]float32, half)
	base := float32(theta)
	for i := range half {
		e := float32(2*i) / float32(dims)
		p := float32(math.Pow(float64(base), float64(e)))
		r.inv[i] = 1 / p
	}
	return r
}

// Llama3Scaling is the rotary frequency scaling of Llama 3.1 and 3.2
// (config.json rope_scaling / rope_parameters with rope_type "llama3").
type Llama3Scaling struct {
	Factor, LowFreqFactor, HighFreqFactor float64
	OriginalMaxPos                        float64 // original_max_position_embeddings
}

// ScaleLlama3 rescales the inverse frequencies as transformers'
// _compute_llama3_parameters does, in float32: with wavelength
// λ = 2π/inv_freq, frequencies with λ above original/low_freq_factor are
// divided by factor, those with λ below original/high_freq_factor are
// kept, and those between are interpolated, (1−s)·f/factor + s·f with
// s = (original/λ − low)/(high − low). The attention scaling stays 1. It
// must be called before the first RoPE.
func (r *Rotary) ScaleLlama3(l Llama3Scaling) {
	factor := float32(l.Factor)
	lowWave := float32(l.OriginalMaxPos / l.LowFreqFactor)
	highWave := float32(l.OriginalMaxPos / l.HighFreqFactor)
	for i, f := range r.inv {
		wave := float32(2*math.Pi) / f
		scaled := f
		if wave > lowWave {
			scaled = f / factor
		}
		if !(wave < highWave) && !(wave > lowWave) {
			s := (float32(l.OriginalMaxPos)/wave - float32(l.LowFreqFactor)) / float32(l.HighFreqFactor-l.LowFreqFactor)
			scaled = (1-s)*scaled/factor + s*scaled
		}
		r.inv[i] = scaled
	}
}

// InvFreq returns the inverse frequencies (Dims/2 values).
func (r *Rotary) InvFreq() []float32 { return r.inv }

// tables returns cos and sin for positions [0, n).
func (r *Rotary) tables(n int) (cos, sin []float32) {
	half := r.Dims / 2
	r.mu.Lock()
	defer r.mu.Unlock()
	if have := len(r.cos) / max(half, 1); have < n && half > 0 {
		n = max(n, 2*have)
		cos, sin := make([]float32, n*half), make([]float32, n*half)
		copy(cos, r.cos)
		copy(sin, r.sin)
		for p := have; p < n; p++ {
			for i, f := range r.inv {
				a := float32(p) * f
				cos[p*half+i] = float32(math.Cos(float64(a)))
				sin[p*half+i] = float32(math.Sin(float64(a)))
			}
		}
		r.cos, r.sin = cos, sin
	}
	return r.cos, r.sin
}

// RoPE rotates x (rows × heads·HeadDim) by the rotary embedding of each
// row's position pos[row]: per head, y = x·cos + rotate_half(x)·sin on the
// first Dims columns, y = x on the rest. pos must stay unchanged until
// Backward has run.
func (g *Graph) RoPE(x *Tensor, r *Rotary, pos []int) *Tensor {
	c := x.Cols()
	if r.HeadDim <= 0 || c%r.HeadDim != 0 || len(pos) != x.Rows() {
		panic(fmt.Sprintf("nn: RoPE: shape %v with head dim %d and %d positions", x.Shape, r.HeadDim, len(pos)))
	}
	maxPos := 0
	for _, p := range pos {
		if p < 0 {
			panic(fmt.Sprintf("nn: RoPE: negative position %d", p))
		}
		maxPos = max(maxPos, p)
	}
	cos, sin := r.tables(maxPos + 1)
	rec := g.needs(x)
	y := g.out(rec, x.Shape...)
	copy(y.Data, x.Data)
	half := r.Dims / 2
	for row, p := range pos {
		cs, sn := cos[p*half:(p+1)*half], sin[p*half:(p+1)*half]
		for h := 0; h < c; h += r.HeadDim {
			xr := x.Data[row*c+h : row*c+h+r.Dims]
			yr := y.Data[row*c+h : row*c+h+r.Dims]
			for i := range half {
				a, b := xr[i], xr[i+half]
				// Rounded as torch rounds q·cos + rotate_half(q)·sin.
				yr[i] = float32(a*cs[i]) + float32(-b*sn[i])
				yr[i+half] = float32(b*cs[i]) + float32(a*sn[i])
			}
		}
	}
	if rec {
		n := g.record(backRoPE, y)
		n.a, n.ids = x, pos
		n.aux, n.aux2 = cos, sin
		n.i0, n.i1 = r.HeadDim, r.Dims
	}
	return y
}

func backRoPE(g *Graph, n *node) {
	x, dy := n.a, n.out.Grad
	c, hd, dims := x.Cols(), n.i0, n.i1
	half := dims / 2
	for row, p := range n.ids {
		cs, sn := n.aux[p*half:(p+1)*half], n.aux2[p*half:(p+1)*half]
		for h := row * c; h < (row+1)*c; h += hd {
			d, gx := dy[h:h+hd], x.Grad[h:h+hd]
			for i := range half { // y_i = a·c − b·s, y_{i+half} = b·c + a·s
				da, db := d[i], d[i+half]
				gx[i] += da*cs[i] + db*sn[i]
				gx[i+half] += db*cs[i] - da*sn[i]
			}
			if dims < hd {
				addTo(d[dims:], gx[dims:])
			}
		}
	}
}
