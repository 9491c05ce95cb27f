package methods

import (
	"fmt"
	"slices"
	"sync"

	"peftbench/nn"
)

// FourierFT is Discrete Fourier Transform fine-tuning (Gao et al. 2024):
// each targeted layer learns n_f real spectral coefficients c at fixed
// random positions E = {(p_k, q_k)} of an Out×In spectrum F, and
//
//	ΔW = α·Re(IDFT2(F)),  ΔW[u,v] = α/(Out·In)·Σ_k c_k·cos(2π(p_k·u/Out + q_k·v/In)),
//
// y = x·(W0 + ΔW)ᵀ + b, with α = scaling (default 150).
//
// The positions are HF PEFT's (peft/tuners/fourierft/layer.py): the first
// n_frequency entries of torch.randperm(Out·In,
// generator=torch.Generator().manual_seed(random_loc_seed)), flat index i
// at row i // In, column i % In; nn.TorchGenerator.Randperm reproduces that
// permutation, so the positions equal HF's, and, as in HF, every layer of a
// shape gets the same positions. HF's default init_weights=False draws
// c ~ N(0, 1) (torch.randn), so ΔW ≠ 0 at step 0; here c is drawn from the
// trial's stream (Info.RandomInit); init_weights=true sets c = 0 (HF's
// reset_fourier_parameters). HF refuses n_frequency > Out·In, and so does
// CheckLayers, naming the layer.
//
// Merged, and Forward on a large batch, build ΔW in the graph (the dense
// path, weightAdapter): the sparse spectrum is symmetrised, H = (F + F̃)/2 with F̃[p,q] = F[−p,−q], so that IDFT2(H)
// = Re(IDFT2(F)) is real; an inverse complex FFT runs down the columns
// 0..In/2 of H that hold coefficients, then a real inverse FFT along each
// of the Out rows (gonum's dsp/fourier). The backward pass is exact:
// ∂L/∂c_k = α/(Out·In)·Re(DFT2(G)[p_k, q_k]) for G = ∂L/∂ΔW, from a real
// FFT of each row of G and a complex FFT down the needed columns.
//
// Cost: the dense path costs an Out×In 2-D FFT each way per step plus the
// weight-gradient GEMM N×Out×In that a LoRA step avoids, whatever the
// batch; so a batch of N rows with N·(Out+In) ≤ Out·In takes the row path
// instead (see Forward), which transforms each row of x and of the output
// gradient, O(N·(In log In + Out log Out + n_f)); its backward reuses the
// forward's transforms of x when x is unchanged. On `bench perf` (2
// threads, every linear targeted, n_f = 1000) a step takes about 5× LoRA's
// on the MLP (batch 128, ~4.1 ms against 0.8 ms) and 1.2–1.7× on the
// transformer (1024 tokens: the dense path). The math requires the MLP's
// excess, not waste: the 784-wide layer's row path needs a length-784
// real FFT of every input row (784 = 2⁴·7², ~22 µs each in gonum's scalar
// float64 fftpack, ~2.8 ms a step for 128 rows, more than LoRA's whole
// step) and the 256-wide layers four length-256 transforms per row, while
// LoRA's r·(Out+In) multiply-adds per row run in an AVX-512 float32 GEMM;
// the dense path would need a 256×784 2-D FFT each way, dearer still.
type FourierFT struct {
	weightAdapter
	// Spectrum holds the trainable coefficients c (HF's fourierft_spectrum).
	Spectrum *nn.Tensor
	// Rows and Cols are the positions (p_k, q_k) of c_k in the Out×In
	// spectrum (HF's indices[0], indices[1]).
	Rows, Cols []int
	// Scaling is α.
	Scaling float64

	out, in, half int
	// fwd lists, per coefficient, the (at most two) flat positions of the
	// half spectrum (Out×(In/2+1)) it adds c_k/2 to; bwd the position whose
	// real part is its gradient; cols the columns of the half spectrum that
	// hold coefficients.
	fwd  [][2]int
	bwd  []int
	cols []int
	fn   *nn.Func // ΔW from c (the dense path)
	rowF *nn.Func // x·ΔWᵀ from x and c (the row path)
	// path forces the row (1) or dense (2) path; 0 chooses by cost.
	path int

	mu   sync.Mutex // guards the scratch below
	h    []complex128
	rows []*realFFT      // one per worker
	colT []*cmplxColumns // one per worker
	rs   []*fourierRowScratch
	dcr  []float64 // per-row gradient contributions, rows×n_f
	// xfs holds the row path's forward transforms of x's rows (rows ×
	// (In/2+1)) and xs a copy of that x, so that backward, given the same
	// x bit for bit, reuses them instead of transforming x again.
	xfs []complex128
	xs  []float32
}

// newFourierFT returns the adapter for l with n_f coefficients at HF's
// positions for seed; c is left zero.
func newFourierFT(l *nn.Linear, nf int, scaling float64, seed uint64) *FourierFT {
	m, n := l.Out, l.In
	perm := nn.NewTorchGenerator(seed).Randperm(m * n)[:nf]
	f := &FourierFT{Rows: make([]int, nf), Cols: make([]int, nf), Scaling: scaling,
		out: m, in: n, half: halfLen(n)}
	for k, i := range perm {
		f.Rows[k], f.Cols[k] = i/n, i%n
	}
	f.plan()
	var ref nn.ParamRef
	f.Spectrum, ref = param(l, "fourierft_spectrum", true, nf)
	f.params = []nn.ParamRef{ref}
	f.fn = &nn.Func{Name: "fourierft", Forward: f.forwardDelta, Backward: f.backwardDelta}
	f.rowF = &nn.Func{Name: "fourierft-rows", Forward: f.forwardRows, Backward: f.backwardRows}
	f.weight = func(g *nn.Graph, l *nn.Linear) *nn.Tensor {
		return plusDelta(g, l, g.Custom(f.fn, []int{f.out, f.in}, f.Spectrum))
	}
	return f
}

// plan precomputes where each coefficient goes in the symmetrised half
// spectrum and which columns the column transforms must visit.
func (f *FourierFT) plan() {
	m, n, h := f.out, f.in, f.half
	used := make([]bool, h)
	f.fwd = make([][2]int, len(f.Rows))
	f.bwd = make([]int, len(f.Rows))
	for k := range f.Rows {
		p, q := f.Rows[k], f.Cols[k]
		pos := [2]int{-1, -1}
		if q < h { // F[p,q] itself
			pos[0] = p*h + q
			used[q] = true
		}
		if q2 := (n - q) % n; q2 < h { // its mirror F̃[−p,−q]
			pos[1] = ((m-p)%m)*h + q2
			used[q2] = true
		}
		f.fwd[k] = pos
		if q < h {
			f.bwd[k] = p*h + q
		} else { // Re DFT2(G)[p,q] = Re DFT2(G)[−p,−q] for real G
			f.bwd[k] = ((m-p)%m)*h + (n - q)
		}
	}
	for q, u := range used {
		if u {
			f.cols = append(f.cols, q)
		}
	}
	f.h = make([]complex128, m*h)
}

// workers returns the goroutines for the transforms, with a row and a
// column transform for each.
func (f *FourierFT) workers() int {
	w := fftWorkers(f.out, f.out*f.in)
	for len(f.rows) < w {
		f.rows = append(f.rows, newRealFFT(f.in))
		f.colT = append(f.colT, newCmplxColumns(f.out))
	}
	return w
}

// scale is α/(Out·In): ifft2's normalisation times the scaling.
func (f *FourierFT) scale() float64 { return f.Scaling / float64(f.out*f.in) }

// forwardDelta writes ΔW = α·Re(IDFT2(F)) (Out×In) to y.
func (f *FourierFT) forwardDelta(y []float32, in []*nn.Tensor) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := in[0].Data
	h := f.h
	clear(h)
	for k, pos := range f.fwd {
		v := complex(float64(c[k])/2, 0)
		for _, p := range pos {
			if p >= 0 {
				h[p] += v
			}
		}
	}
	nw := f.workers()
	parallel(len(f.cols), nw, func(w, lo, hi int) {
		for _, q := range f.cols[lo:hi] {
			f.colT[w].transform(h, f.half, q, true)
		}
	})
	s := f.scale()
	parallel(f.out, nw, func(w, lo, hi int) {
		clear(y[lo*f.in : hi*f.in])
		for u := lo; u < hi; u++ {
			f.rows[w].inverse(y[u*f.in:(u+1)*f.in], h[u*f.half:(u+1)*f.half], s)
		}
	})
}

// backwardDelta adds ∂L/∂c_k = α/(Out·In)·Re(DFT2(G)[p_k, q_k]) to c's
// gradient, G = dy.
func (f *FourierFT) backwardDelta(dy []float32, in []*nn.Tensor) {
	c := in[0]
	if c.Grad == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.h
	nw := f.workers()
	parallel(f.out, nw, func(w, lo, hi int) {
		for u := lo; u < hi; u++ {
			f.rows[w].forward(h[u*f.half:(u+1)*f.half], dy[u*f.in:(u+1)*f.in])
		}
	})
	parallel(len(f.cols), nw, func(w, lo, hi int) {
		for _, q := range f.cols[lo:hi] {
			f.colT[w].transform(h, f.half, q, false)
		}
	})
	s := f.scale()
	for k, p := range f.bwd {
		c.Grad[k] += float32(s * real(h[p]))
	}
}

type fourierFTMethod struct{}

func (fourierFTMethod) Info() Info {
	return Info{
		Name: "fourierft", Family: "transform-domain", HasRank: true,
		RankOption: "n_frequency", RankMeans: "spectral coefficients per layer (n_frequency)",
		Paper:   Paper{Title: "Parameter-Efficient Fine-Tuning with Discrete Fourier Transform", Authors: "Gao et al.", Year: 2024, ArXiv: "2405.03003"},
		Summary: "ΔW = α·Re(IDFT2(F)); F holds n_f trainable real coefficients at fixed random positions",
		Options: []Option{
			intOpt("n_frequency", 1000, 1, "trainable spectral coefficients per layer (at most out·in)"),
			floatOpt("scaling", 150, nil, nil, "scaling α of ΔW = α·Re(IDFT2(F))"),
			intOpt("random_loc_seed", 777, 0, "seed of torch.Generator whose randperm(out·in) picks the coefficients' positions"),
			boolOpt("init_weights", false, "true: c = 0 (ΔW = 0 at step 0); false (HF's default): c ~ N(0, 1)"),
		},
		ParamsFormula:   "Σ n_frequency",
		RandomInit:      "init_weights=false (HF's default): c ~ N(0, 1), so ΔW ≠ 0 at step 0",
		IdentityOptions: map[string]any{"init_weights": true},
		AltOptions:      map[string]any{"n_frequency": 500, "scaling": 300.0, "random_loc_seed": 1},
	}
}

// CheckLayers refuses n_frequency above Out·In of any layer, as HF does.
func (fourierFTMethod) CheckLayers(o Options, layers []LayerShape) error {
	nf := o.Int("n_frequency")
	for _, l := range layers {
		if nf > l.Out*l.In {
			return optionError("fourierft", "n_frequency", fmt.Sprintf("%d exceeds out·in = %d of layer %s (%d×%d)", nf, l.Out*l.In, l.Name, l.Out, l.In))
		}
	}
	return nil
}

func (fourierFTMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	nf, seed := o.Int("n_frequency"), uint64(o.Int("random_loc_seed"))
	return attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		if nf > l.Out*l.In {
			return nil, fmt.Errorf("methods: fourierft: n_frequency %d exceeds out·in = %d of layer %s (%d×%d)", nf, l.Out*l.In, l.Name, l.Out, l.In)
		}
		f := newFourierFT(l, nf, o.Float("scaling"), seed)
		if !o.Bool("init_weights") {
			rng.FillNormal(f.Spectrum, 0, 1)
		}
		return f, nil
	})
}

func (fourierFTMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	return int64(len(layers)) * int64(o.Int("n_frequency"))
}

func init() { Register("fourierft", fourierFTMethod{}) }

// Forward computes x·(W0 + ΔW)ᵀ + b. For a batch of N rows with
// N·(Out+In) ≤ Out·In it does so without forming ΔW (the row path):
//
//	x·ΔWᵀ[r,u] = α/(Out·In)·Re Σ_k c_k·X̂_r[q_k]·e^{2πi·p_k·u/Out},
//
// X̂_r the inverse DFT (unnormalised) of input row r: one real FFT of
// length In per row, a scatter of the n_f products into a length-Out
// spectrum, and one real inverse FFT of length Out — O(N·(In log In +
// Out log Out + n_f)) instead of the 2-D FFT's O(Out·In·log) and the
// dense weight-gradient GEMM. Its backward is exact as well (see
// backwardRows). Larger batches build ΔW once (the dense path).
func (f *FourierFT) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	n := x.Rows()
	rows := f.path == 1 || f.path == 0 && n*(f.out+f.in) <= f.out*f.in
	if !rows {
		return f.weightAdapter.Forward(g, l, x)
	}
	return g.Add(l.Base(g, x), g.Custom(f.rowF, []int{n, f.out}, x, f.Spectrum))
}

// fourierRowScratch is one worker's buffers for the row path.
type fourierRowScratch struct {
	fIn, fOut *realFFT
	xf, xh    []complex128 // half spectra, length In/2+1
	df, sh    []complex128 // half spectra, length Out/2+1
	s         []complex128 // full spectrum, length Out
	t         []complex128 // full spectrum, length In
}

// rowWorkers returns the goroutines for n rows, with scratch for each.
func (f *FourierFT) rowWorkers(n int) int {
	w := fftWorkers(n, n*(f.out+f.in)*8)
	for len(f.rs) < w {
		f.rs = append(f.rs, &fourierRowScratch{
			fIn: newRealFFT(f.in), fOut: newRealFFT(f.out),
			xf: make([]complex128, halfLen(f.in)), xh: make([]complex128, halfLen(f.in)),
			df: make([]complex128, halfLen(f.out)), sh: make([]complex128, halfLen(f.out)),
			s: make([]complex128, f.out), t: make([]complex128, f.in)})
	}
	return w
}

// fullAt returns coefficient k (0 ≤ k < L) of the inverse DFT of a real
// sequence of length L, Σ_t x[t]·e^{+2πi·kt/L}, from the half of its
// forward DFT that the real FFT keeps.
func fullAt(half []complex128, k, L int) complex128 {
	if k < len(half) {
		v := half[k]
		return complex(real(v), -imag(v))
	}
	return half[L-k]
}

// hermitianHalf writes the first L/2+1 entries of (S[p] + conj(S[−p]))/2,
// whose inverse DFT is the real part of S's: Re Σ_p S[p]·w^{pt} =
// Σ_p ½(S[p] + conj(S[−p]))·w^{pt}.
func hermitianHalf(dst, full []complex128) {
	L := len(full)
	for p := range dst {
		a, v := full[p], full[(L-p)%L]
		dst[p] = complex((real(a)+real(v))/2, (imag(a)-imag(v))/2)
	}
}

func (f *FourierFT) forwardRows(y []float32, in []*nn.Tensor) {
	x, c := in[0], in[1].Data
	n := x.Rows()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.scale()
	hn := halfLen(f.in)
	if len(f.xfs) < n*hn {
		f.xfs = make([]complex128, n*hn)
	}
	f.xs = append(f.xs[:0], x.Data...)
	parallel(n, f.rowWorkers(n), func(w, lo, hi int) {
		sc := f.rs[w]
		for r := lo; r < hi; r++ {
			xf := f.xfs[r*hn : (r+1)*hn]
			sc.fIn.forward(xf, x.Data[r*f.in:(r+1)*f.in])
			clear(sc.s)
			for k, p := range f.Rows {
				sc.s[p] += complex(float64(c[k]), 0) * fullAt(xf, f.Cols[k], f.in)
			}
			hermitianHalf(sc.sh, sc.s)
			yr := y[r*f.out : (r+1)*f.out]
			clear(yr)
			sc.fOut.inverse(yr, sc.sh, s)
		}
	})
}

// backwardRows adds, for dy = ∂L/∂(x·ΔWᵀ) and D̂_r the inverse DFT
// (unnormalised) of dy's row r,
//
//	∂L/∂c_k = α/(Out·In)·Σ_r Re(X̂_r[q_k]·D̂_r[p_k])
//	∂L/∂x[r,v] = α/(Out·In)·Re Σ_k c_k·D̂_r[p_k]·e^{2πi·q_k·v/In}
//
// the rows' contributions to ∂L/∂c summed in row order.
func (f *FourierFT) backwardRows(dy []float32, in []*nn.Tensor) {
	x, c := in[0], in[1]
	if x.Grad == nil && c.Grad == nil {
		return
	}
	n, nf := x.Rows(), len(f.Rows)
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.Grad != nil && len(f.dcr) < n*nf {
		f.dcr = make([]float64, n*nf)
	}
	s := f.scale()
	hn := halfLen(f.in)
	cached := len(f.xfs) >= n*hn && slices.Equal(f.xs, x.Data)
	parallel(n, f.rowWorkers(n), func(w, lo, hi int) {
		sc := f.rs[w]
		for r := lo; r < hi; r++ {
			sc.fOut.forward(sc.df, dy[r*f.out:(r+1)*f.out])
			if c.Grad != nil {
				xf := sc.xf
				if cached {
					xf = f.xfs[r*hn : (r+1)*hn]
				} else {
					sc.fIn.forward(xf, x.Data[r*f.in:(r+1)*f.in])
				}
				dr := f.dcr[r*nf : (r+1)*nf]
				for k, p := range f.Rows {
					dr[k] = real(fullAt(xf, f.Cols[k], f.in) * fullAt(sc.df, p, f.out))
				}
			}
			if x.Grad != nil {
				clear(sc.t)
				for k, p := range f.Rows {
					sc.t[f.Cols[k]] += complex(float64(c.Data[k]), 0) * fullAt(sc.df, p, f.out)
				}
				hermitianHalf(sc.xh, sc.t)
				sc.fIn.inverse(x.Grad[r*f.in:(r+1)*f.in], sc.xh, s)
			}
		}
	})
	if c.Grad != nil {
		for k := range nf {
			var acc float64
			for r := range n {
				acc += f.dcr[r*nf+k]
			}
			c.Grad[k] += float32(s * acc)
		}
	}
}
