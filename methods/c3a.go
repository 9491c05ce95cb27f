package methods

import (
	"fmt"
	"math"
	"sync"

	"peftbench/nn"
)

// C3A is Circular Convolution Adaptation (Chen et al. 2024): ΔW is block
// circulant with b×b blocks, b = block_size dividing In and Out. The
// trainable kernel K ((Out/b)×(In/b)×b, HF's c3a_kernel) holds one vector
// per block, and
//
//	ΔW[i·b+u, j·b+t] = K[i, j, (t−u) mod b] / In,
//
// so row u+1 of a block is row u shifted cyclically one place right and
// row 0 is K[i, j, :]; the 1/In is HF's (the layer divides by
// x.size(−1)).
//
// Two exact ways apply it, chosen per layer and batch by c3aFFTCheaper
// from the shapes alone (never the thread count, so a trial rounds the
// same everywhere):
//
//   - the dense path (every layer and block size we train): ΔW is built
//     from K in O(Out·In), each block row a cyclic shift of K's vector,
//     and y = x·(W0 + ΔW)ᵀ + b is one GEMM (g.Linear); backward, the GEMM
//     gives ∂L/∂W' and ∂L/∂K[i,j,s] = Σ_u ∂L/∂W'[i·b+u, j·b+(u+s) mod b]/In
//     is its sum along each block's circulant diagonals, O(Out·In), in a
//     fixed order. Merged builds W0 + ΔW the same way.
//   - the FFT path, HF PEFT's BlockCircularConvolution
//     (peft/tuners/c3a/utils.py), without forming ΔW: x is cut into In/b
//     blocks x_j, and output block i is Σ_j x_j ⋆ K_ij / In, the circular
//     cross-correlation (x_j ⋆ k)[u] = Σ_s k[s]·x_j[(u+s) mod b], computed
//     as IDFT(Σ_j DFT(x_j)·conj(DFT(K_ij))) with gonum's real FFT of length
//     b — O(N·Out·In/b) multiplications instead of a dense product's
//     N·Out·In. Its backward pass is exact and FFT-based too: ∂L/∂x_j =
//     Σ_i dy_i ∗ K_ij (circular convolution, DFT(dy_i)·DFT(K_ij)) and
//     ∂L/∂K_ij = Σ_rows x_j ⋆ dy_i (DFT(x_j)·conj(DFT(dy_i))), each divided
//     by In.
//
// The FFT path does fewer multiplications, but each row needs ~5·(In+Out)/b
// FFTs of length b in scalar float64 (gonum), against float32 AVX-512
// GEMMs: measured on 2 threads, the dense path is 70× faster at b = 2
// (784→256, 128 rows), 8× at b = 16, 7× at b = 64 (128→384, 1024 rows)
// and still 2.8× at b = 256 (512→512); by c3aFFTCheaper's estimate the
// FFT path only pays for b ≳ 100 on layers thousands wide.
//
// Init (init_weights, HF's choices): "xavier_uniform" (HF's default, and
// what HF's init_weights=False means) draws K ~ U(±√3·√(2/(In+Out))), so
// ΔW ≠ 0 at step 0; "kaiming_uniform" U(±√(1/In)); "gaussian" N(0, 1);
// "zeros" (HF's init_weights=True) makes C3A start at the base model. K is
// drawn from the trial's stream.
//
// block_size: HF's default, 256, divides none of our MLP tasks' 784-wide
// inputs nor the 64-wide layers, so the default here is 0, meaning HF's
// own advice (C3AConfig's docstring): the greatest common divisor of the
// input and output sizes of all targeted layers (16 on MNIST's 784/128
// layers, 64 on the transformers' 64/256 ones). An explicit block_size
// must divide every targeted layer's In and Out (CheckLayers names the
// first that it does not). The sweep's rank axis sets block_size; note
// that a larger b means fewer parameters, Out·In/b per layer. HF's docs
// recommend a learning rate near 1e-1 (Info.LR), as ΔW is divided by In.
//
// Deviation: HF's BlockCircularConvolution.backward returns the right
// kernel gradient but a wrong input gradient for b > 2,
// fft(einsum(fft(dy), ifft(K))).real = Σ_u dy[u]·K[(t+u) mod b] where the
// derivative is Σ_u dy[u]·K[(t−u) mod b] (torch.autograd.gradcheck fails on
// it; testdata/torch/c3a.py shows it). It corrupts the gradient of every
// trainable parameter below a C3A layer. Here the input gradient is exact;
// the torch cross-check differentiates HF's forward with autograd.
//
// Cost: the dense path's step is full fine-tuning's (the weight-gradient
// GEMM N·Out·In that LoRA avoids) plus two O(Out·In) passes, the build
// and the diagonal sums: on `bench perf` (2 threads, every linear
// targeted) about 2.5× LoRA's step on the MLP (b = 2, from the 10-wide
// head; full fine-tuning 1.6×) and 1.2× on the transformer (b = 64;
// full 1.1×), against 106× and 5.6× by the FFT path.
type C3A struct {
	// Kernel is HF's c3a_kernel, (Out/b)×(In/b)×b.
	Kernel *nn.Tensor
	// Block is b.
	Block int

	out, in, mb, nb, half int
	fn                    *nn.Func // the update by FFT (the FFT path)
	wfn                   *nn.Func // W0 + ΔW from W0 and K (the dense path)
	// path forces the FFT (1) or dense (2) path; 0 chooses by cost.
	path int

	mu  sync.Mutex // guards the scratch below
	fft *realFFT
	kf  []complex128 // DFT of every kernel vector, mb·nb·half
	xf  []complex128 // DFT of one row's input blocks, nb·half
	dyf []complex128 // DFT of one row's output-gradient blocks, mb·half
	dk  []complex128 // accumulated DFT of ∂L/∂K, mb·nb·half
	acc []complex128 // half
	ks  []float32    // K/In, for the dense build
	dks []float64    // ∂L/∂K·In, accumulated by the dense backward
}

func newC3A(l *nn.Linear, b int) *C3A {
	c := &C3A{Block: b, out: l.Out, in: l.In, mb: l.Out / b, nb: l.In / b, half: halfLen(b)}
	c.Kernel, _ = param(l, "c3a_kernel", true, c.mb, c.nb, b)
	c.fn = &nn.Func{Name: "c3a", Forward: c.forward, Backward: c.backward}
	c.wfn = &nn.Func{Name: "c3a-weight", Forward: c.weight, Backward: c.weightBack}
	return c
}

// Forward computes x·W0ᵀ + b + (block circular convolution of x with K)/In,
// by the dense path (x·(W0 + ΔW)ᵀ + b, one GEMM) or the FFT path,
// whichever useFFT says is cheaper for x's rows.
func (c *C3A) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	if !c.useFFT(x.Rows()) {
		return g.Linear(x, g.Custom(c.wfn, []int{c.out, c.in}, l.Weight, c.Kernel), l.Bias)
	}
	return g.Add(l.Base(g, x), g.Custom(c.fn, []int{x.Rows(), c.out}, x, c.Kernel))
}

// useFFT reports whether a batch of n rows takes the FFT path.
func (c *C3A) useFFT(n int) bool {
	switch c.path {
	case 1:
		return true
	case 2:
		return false
	}
	return c3aFFTCheaper(n, c.out, c.in, c.Block)
}

// Params returns the kernel, with weight decay.
func (c *C3A) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: c.Kernel.Name, T: c.Kernel, LRMul: 1, Decay: true}}
}

// Merged returns W0 + ΔW, built as the dense path's forward builds it.
func (c *C3A) Merged(l *nn.Linear) []float32 {
	w := make([]float32, c.out*c.in)
	c.weight(w, []*nn.Tensor{l.Weight, c.Kernel})
	return w
}

// weight writes W0 + ΔW (Out×In) to y, from in = (W0, K):
// ΔW[i·b+u, j·b+t] = K[i, j, (t−u) mod b]/In, each block row a cyclic
// shift of the kernel vector. K[i, ·, ·] is laid out like a row of ΔW
// (In long), so row u of block row i reads it rotated by u within each
// block: by blocks (two copies each) when blocks are at least as long
// as there are of them, else strided over the blocks, one pass per t, so
// that the inner loops stay long at small b.
func (c *C3A) weight(y []float32, in []*nn.Tensor) {
	w0, k := in[0].Data, in[1].Data
	b, inv := c.Block, 1/float64(c.in)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ks) < len(k) {
		c.ks = make([]float32, len(k))
	}
	ks := c.ks[:len(k)]
	for i, v := range k {
		ks[i] = float32(float64(v) * inv)
	}
	for i := range c.mb {
		ki := ks[i*c.in : (i+1)*c.in]
		for u := range b {
			row := (i*b + u) * c.in
			yr, wr := y[row:row+c.in], w0[row:row+c.in]
			if u == 0 { // no rotation
				for v, kv := range ki {
					yr[v] = wr[v] + kv
				}
				continue
			}
			if c.nb >= b {
				// yr[j·b+t] = wr[j·b+t] + ki[j·b+(t−u) mod b]
				for t := range b {
					s := t - u
					if s < 0 {
						s += b
					}
					for v := t; v < len(yr); v += b {
						yr[v] = wr[v] + ki[v-t+s]
					}
				}
				continue
			}
			for j := 0; j < len(yr); j += b {
				kv, yb, wb := ki[j:j+b], yr[j:j+b], wr[j:j+b]
				for t, v := range kv[:b-u] {
					yb[u+t] = wb[u+t] + v
				}
				for t, v := range kv[b-u:] {
					yb[t] = wb[t] + v
				}
			}
		}
	}
}

// weightBack adds dy (∂L/∂W') to W0's gradient, if it has one, and
// ∂L/∂K[i,j,s] = Σ_u dy[i·b+u, j·b+(u+s) mod b]/In to K's: the sums along
// each block's circulant diagonals, accumulated in float64 in a fixed
// order (rows, then columns), looping as weight does.
func (c *C3A) weightBack(dy []float32, in []*nn.Tensor) {
	w0, k := in[0], in[1]
	if w0.Grad != nil {
		for i, v := range dy {
			w0.Grad[i] += v
		}
	}
	if k.Grad == nil {
		return
	}
	b := c.Block
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dks) < len(k.Data) {
		c.dks = make([]float64, len(k.Data))
	}
	acc := c.dks[:len(k.Data)]
	clear(acc)
	for i := range c.mb {
		ai := acc[i*c.in : (i+1)*c.in]
		for u := range b {
			row := (i*b + u) * c.in
			dr := dy[row : row+c.in]
			if u == 0 { // no rotation
				for v, d := range dr {
					ai[v] += float64(d)
				}
				continue
			}
			if c.nb >= b {
				// ai[j·b+s] += dr[j·b+(u+s) mod b], s = (t−u) mod b
				for t := range b {
					s := t - u
					if s < 0 {
						s += b
					}
					for v := t; v < len(dr); v += b {
						ai[v-t+s] += float64(dr[v])
					}
				}
				continue
			}
			for j := 0; j < len(dr); j += b {
				a, db := ai[j:j+b], dr[j:j+b]
				for s, v := range db[u:] {
					a[s] += float64(v)
				}
				for s, v := range db[:u] {
					a[b-u+s] += float64(v)
				}
			}
		}
	}
	inv := 1 / float64(c.in)
	for i, v := range acc {
		k.Grad[i] += float32(v * inv)
	}
}

// scale is 1/(b·In): the inverse DFT's normalisation times HF's 1/In.
func (c *C3A) scale() float64 { return 1 / float64(c.Block*c.in) }

// kernelSpectra fills kf with the DFT of every kernel vector.
func (c *C3A) kernelSpectra(k []float32) {
	b, h := c.Block, c.half
	for v := range c.mb * c.nb {
		c.fft.forward(c.kf[v*h:(v+1)*h], k[v*b:(v+1)*b])
	}
}

// conv writes the update for rows rows of x (rows×In) to y (rows×Out),
// with kf current.
func (c *C3A) conv(y, x []float32, rows int) {
	b, h := c.Block, c.half
	s := c.scale()
	clear(y[:rows*c.out])
	for r := range rows {
		xr, yr := x[r*c.in:(r+1)*c.in], y[r*c.out:(r+1)*c.out]
		for j := range c.nb {
			c.fft.forward(c.xf[j*h:(j+1)*h], xr[j*b:(j+1)*b])
		}
		for i := range c.mb {
			acc := c.acc
			clear(acc)
			for j := range c.nb {
				kij, xj := c.kf[(i*c.nb+j)*h:(i*c.nb+j+1)*h], c.xf[j*h:(j+1)*h]
				for k, xv := range xj {
					kv := kij[k]
					acc[k] += xv * complex(real(kv), -imag(kv))
				}
			}
			c.fft.inverse(yr[i*b:(i+1)*b], acc, s)
		}
	}
}

// fftScratch allocates the FFT path's plan and buffers on first use.
func (c *C3A) fftScratch() {
	if c.fft != nil {
		return
	}
	c.fft = newRealFFT(c.Block)
	c.kf = make([]complex128, c.mb*c.nb*c.half)
	c.xf = make([]complex128, c.nb*c.half)
	c.dyf = make([]complex128, c.mb*c.half)
	c.acc = make([]complex128, c.half)
}

func (c *C3A) forward(y []float32, in []*nn.Tensor) {
	x, k := in[0], in[1]
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fftScratch()
	c.kernelSpectra(k.Data)
	c.conv(y, x.Data, x.Rows())
}

// backward adds ∂L/∂x_j = Σ_i dy_i ∗ K_ij / In and ∂L/∂K_ij = Σ_rows
// x_j ⋆ dy_i / In, each where a gradient is wanted.
func (c *C3A) backward(dy []float32, in []*nn.Tensor) {
	x, k := in[0], in[1]
	if x.Grad == nil && k.Grad == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, h := c.Block, c.half
	s := c.scale()
	// kf still holds the kernel's spectra from the forward pass: the
	// kernel changes only in the optimiser step, after backward.
	if k.Grad != nil {
		if c.dk == nil {
			c.dk = make([]complex128, c.mb*c.nb*h)
		}
		clear(c.dk)
	}
	for r := range x.Rows() {
		dyr := dy[r*c.out : (r+1)*c.out]
		for i := range c.mb {
			c.fft.forward(c.dyf[i*h:(i+1)*h], dyr[i*b:(i+1)*b])
		}
		if x.Grad != nil {
			gr := x.Grad[r*c.in : (r+1)*c.in]
			for j := range c.nb {
				acc := c.acc
				clear(acc)
				for i := range c.mb {
					kij, di := c.kf[(i*c.nb+j)*h:(i*c.nb+j+1)*h], c.dyf[i*h:(i+1)*h]
					for q, dv := range di {
						acc[q] += dv * kij[q]
					}
				}
				c.fft.inverse(gr[j*b:(j+1)*b], acc, s)
			}
		}
		if k.Grad != nil {
			xr := x.Data[r*c.in : (r+1)*c.in]
			for j := range c.nb {
				c.fft.forward(c.xf[j*h:(j+1)*h], xr[j*b:(j+1)*b])
			}
			for i := range c.mb {
				di := c.dyf[i*h : (i+1)*h]
				for j := range c.nb {
					dij, xj := c.dk[(i*c.nb+j)*h:(i*c.nb+j+1)*h], c.xf[j*h:(j+1)*h]
					for q, xv := range xj {
						dv := di[q]
						dij[q] += xv * complex(real(dv), -imag(dv))
					}
				}
			}
		}
	}
	if k.Grad != nil {
		for v := range c.mb * c.nb {
			c.fft.inverse(k.Grad[v*b:(v+1)*b], c.dk[v*h:(v+1)*h], s)
		}
	}
}

type c3aMethod struct{}

var c3aInits = []string{"xavier_uniform", "kaiming_uniform", "gaussian", "zeros"}

func (c3aMethod) Info() Info {
	return Info{
		Name: "c3a", Family: "transform-domain", HasRank: true,
		RankOption: "block_size", RankMeans: "circulant block size b (Out·In/b parameters per layer: larger b, fewer)",
		Paper:   Paper{Title: "Parameter-Efficient Fine-Tuning via Circular Convolution", Authors: "Chen et al.", Year: 2024, ArXiv: "2407.19342"},
		Summary: "block-circulant ΔW/In from one trainable b-vector per b×b block, applied by FFT circular convolution",
		Options: []Option{
			intOpt("block_size", 0, 0, "circulant block size b, dividing every targeted layer's in and out; 0: the gcd of all of them (HF's advice)"),
			stringOpt("init_weights", c3aInits[0], c3aInits, "kernel init: xavier_uniform (HF's default, also HF's false), kaiming_uniform, gaussian, or zeros (HF's true: ΔW = 0)"),
		},
		ParamsFormula:   "Σ out·in/b",
		RandomInit:      "init_weights=xavier_uniform (HF's default): K ~ U(±√(6/(in+out))), so ΔW ≠ 0 at step 0",
		IdentityOptions: map[string]any{"init_weights": "zeros"},
		AltOptions:      map[string]any{"block_size": 8, "init_weights": "gaussian"},
		LR:              1e-1,
	}
}

// c3aFFTCheaper reports whether the FFT path is estimated to be cheaper
// than the dense path for a batch of n rows through an out×in layer with
// block size b. The estimate depends on the shapes only, never on the
// thread count, so a trial's path (and its rounding) is the same on every
// machine. Per row, the dense path's three GEMMs cost about 0.1 ns per
// weight (6 flops at ~60 GFLOP/s, 2 threads), and the FFT path about
// 9 ns per (Out·In/b) complex product (three passes) plus 7.5 ns·log₂b
// per (In+Out) element of its ~5 length-b FFTs per row (gonum, scalar
// float64): measured on 784-256-10 and 128-512 layers, b = 2…256, the
// dense path was 2.5–70× faster in every case; by this estimate the FFT
// path wins only for b ≳ 100 on layers of a few thousand units (HF's
// block_size 256 on an LLM's 4096-wide projections). The per-step terms
// (the dense build and reduction, the kernel FFTs) are both O(Out·In)
// and left out.
func c3aFFTCheaper(n, out, in, b int) bool {
	_ = n // both paths are linear in the rows
	lg := math.Log2(float64(b))
	fft := 75*float64(in+out)*lg + 90*float64(out)*float64(in)/float64(b)
	return fft < float64(out)*float64(in)
}

// c3aBlock returns the block size for layers: block_size, or the gcd of
// every layer's In and Out when it is 0.
func c3aBlock(o Options, layers []LayerShape) int {
	if b := o.Int("block_size"); b > 0 {
		return b
	}
	g := 0
	for _, l := range layers {
		g = gcd(gcd(g, l.Out), l.In)
	}
	return g
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// CheckLayers refuses a block_size that does not divide some layer's In
// or Out, as HF's update_layer does.
func (c3aMethod) CheckLayers(o Options, layers []LayerShape) error {
	b := c3aBlock(o, layers)
	for _, l := range layers {
		if l.In%b != 0 || l.Out%b != 0 {
			return optionError("c3a", "block_size", fmt.Sprintf("%d does not divide both in and out of layer %s (%d×%d)", b, l.Name, l.Out, l.In))
		}
	}
	return nil
}

func (m c3aMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	if err := m.CheckLayers(o, Shapes(layers)); err != nil {
		return nil, err
	}
	b := c3aBlock(o, Shapes(layers))
	init := o.String("init_weights")
	return attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		c := newC3A(l, b)
		switch init {
		case "xavier_uniform":
			a := float32(math.Sqrt(3) * math.Sqrt(2/float64(l.In+l.Out)))
			rng.FillUniform(c.Kernel, -a, a)
		case "kaiming_uniform":
			a := float32(math.Sqrt(1 / float64(l.In)))
			rng.FillUniform(c.Kernel, -a, a)
		case "gaussian":
			rng.FillNormal(c.Kernel, 0, 1)
		case "zeros":
		default:
			return nil, fmt.Errorf("methods: c3a: %s: unknown init_weights %q", l.Name, init)
		}
		return c, nil
	})
}

func (c3aMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	b := c3aBlock(o, layers)
	var n int64
	for _, l := range layers {
		n += int64(l.Out) * int64(l.In) / int64(b)
	}
	return n
}

func init() { Register("c3a", c3aMethod{}) }
