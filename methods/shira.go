package methods

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"

	"peftbench/kernels"
	"peftbench/nn"
)

// SHiRA is the sparse high-rank adapter (Bhardwaj et al. 2024), as HF
// PEFT's peft.tuners.shira computes it:
//
//	ΔW = S,  y = x·(W0 + S)ᵀ + b,
//
// S (Out×In) is zero except at K = r·(Out+In) fixed mask positions — the
// budget of a rank-r LoRA — whose values (HF's shira_weight, a K-vector in
// the row-major order of the positions, as torch.where lists them) train.
// S's rank is not limited by r. HF scales S by 1 (its scaling is an
// inference-time knob); K ≤ Out·In is required (HF raises otherwise).
//
// Masks (mask_type):
//   - "random" (HF's default and its only built-in mask_fn, random_mask):
//     the first K entries of torch.randperm(Out·In, generator) with the
//     generator seeded random_seed afresh for every layer, so layers of one
//     shape share their mask. nn.TorchGenerator.Randperm reproduces
//     torch.randperm bit for bit, so the positions equal HF's. HF's
//     random_seed None leaves torch.Generator() at its default seed,
//     67280421310721; that is this option's default, which picks the same
//     positions.
//   - "magnitude": the K entries of largest |W0| (the paper's weight-
//     magnitude mask; ties go to the lower row-major index). HF PEFT takes
//     it only as a user-supplied mask_fn.
//
// Init: S = 0 (HF init_weights=True), or with init_weights=false HF's
// torch.randn: the K values N(0, 1), drawn from the trial's stream.
//
// HF's forward builds W0 + S densely and applies it. This does the same
// on layers where S is not very sparse (K ≥ Out·In/64, shiraDenseAt): W0 +
// S is a copy of W0 with K entries added, applied as one linear op, and
// backward gathers dW' (one N·Out·In GEMM, as full fine-tuning) at the
// mask. On sparser layers it computes x·W0ᵀ + b + x·Sᵀ with the sparse
// product as a custom op (N·K multiply-adds each way, no dense dW'). On
// bench perf's models (every layer dense) a step costs about full
// fine-tuning's, 1.0–1.3× LoRA's.
//
// Deviation: the default rank is 8, not HF's 32. r·(Out+In) ≤ Out·In needs
// r ≤ Out·In/(Out+In), which r = 32 breaks on small layers of the
// benchmark's tasks (a 64×16 layer allows 12, a 10×128 head 9); r = 8 fits
// every layer that LoRA's default r = 8 fits and gives SHiRA LoRA's
// default budget.
type SHiRA struct {
	Values *nn.Tensor // shira_weight: K trainable entries
	// Idx are the mask positions o·In + j, ascending (row-major).
	Idx []int32

	// Dense selects the forward route (shiraDenseAt): build W0 + S and
	// apply it, or W0 and the sparse product separately.
	Dense bool

	f, dense *nn.Func
}

// Forward computes x·W0ᵀ + b + x·Sᵀ, the sparse product over the mask
// (N·K multiply-adds, like LoRA's N·r·(Out+In)).
func (s *SHiRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	if s.Dense {
		return g.Linear(x, g.Custom(s.dense, l.Weight.Shape, l.Weight, s.Values), l.Bias)
	}
	return g.Add(l.Base(g, x), g.Custom(s.f, []int{x.Rows(), l.Out}, x, s.Values))
}

// shiraDenseAt reports whether a layer with k mask entries of out·in takes
// the dense route: at a density of 1/64 or more. Both routes' costs grow
// with the batch N; on 2 threads the dense one (an extra N·Out·In GEMM for
// dW') is the faster down to a density of about 1.5% (a 1024×1024 layer at
// r = 8 breaks even; every layer of bench perf's MLP and transformer is
// denser: 4% to 83%) and the sparse one wins below (a 4096×1024 layer at
// r = 8, 1%, in 20 ms against 27 at batch 128).
func shiraDenseAt(k, out, in int) bool { return 64*k >= out*in }

// shiraDenseFunc returns W0 + S from W0 and the values at idx; backward
// gathers dW' at the mask into the values' gradient (W0 is frozen).
func shiraDenseFunc(idx []int32) *nn.Func {
	return &nn.Func{
		Name: "shira_dense",
		Forward: func(w []float32, ins []*nn.Tensor) {
			copy(w, ins[0].Data)
			v := ins[1].Data
			for k, i := range idx {
				w[i] += v[k]
			}
		},
		Backward: func(dw []float32, ins []*nn.Tensor) {
			if g := ins[1].Grad; g != nil {
				for k, i := range idx {
					g[k] += dw[i]
				}
			}
		},
	}
}

// Params returns shira_weight (with weight decay, as HF's Trainer decays
// every non-bias parameter).
func (s *SHiRA) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: s.Values.Name, T: s.Values, LRMul: 1, Decay: true}}
}

// Merged returns W0 + S.
func (s *SHiRA) Merged(l *nn.Linear) []float32 {
	w := append([]float32(nil), l.Weight.Data...)
	for k, i := range s.Idx {
		w[i] += s.Values.Data[k]
	}
	return w
}

// shiraSparseFunc returns x·Sᵀ (N×out) from x (N×in) and the values of S
// at the row-major positions idx (ascending, so each row o's entries are
// one run, start[o]:start[o+1]). It works on transposed copies, so that
// every mask entry is one SIMD axpy or dot over the batch:
// yᵀ[o] += v_k·xᵀ[j_k], ∂v_k = dyᵀ[o]·xᵀ[j_k], ∂xᵀ[j_k] += v_k·dyᵀ[o]. The
// transposes live in buffers the op keeps (a lock guards them), with a row
// stride of N+16 rather than N: a power-of-two stride would map the rows
// a tile of the transpose writes to the same cache sets.
func shiraSparseFunc(idx []int32, out, in int) *nn.Func {
	cols := make([]int32, len(idx))
	start := make([]int, out+1)
	for k, i := range idx {
		cols[k] = i % int32(in)
		start[int(i)/in+1]++
	}
	for o := range out {
		start[o+1] += start[o]
	}
	var (
		mu      sync.Mutex
		xt, ot  []float32 // xᵀ (in×N), yᵀ or dyᵀ (out×N), row stride N+16
		gxt     []float32 // ∂xᵀ (in×N)
		grow    = func(b []float32, n int) []float32 { return slices.Grow(b[:0], n)[:n] }
		strided = func(n int) int { return n + 16 }
	)
	return &nn.Func{
		Name: "shira_sparse",
		Forward: func(y []float32, ins []*nn.Tensor) {
			mu.Lock()
			defer mu.Unlock()
			x, v := ins[0].Data, ins[1].Data
			n := len(x) / in
			ld := strided(n)
			xt, ot = grow(xt, in*ld), grow(ot, out*ld)
			shiraTranspose(xt, ld, x, n, in, false)
			for o := range out {
				yo := ot[o*ld : o*ld+n]
				clear(yo)
				for k := start[o]; k < start[o+1]; k++ {
					c := int(cols[k])
					kernels.Axpy(v[k], xt[c*ld:c*ld+n], yo)
				}
			}
			shiraTranspose(y, out, ot, out, n, false)
		},
		Backward: func(dy []float32, ins []*nn.Tensor) {
			mu.Lock()
			defer mu.Unlock()
			xtn, vt := ins[0], ins[1]
			n := len(dy) / out
			ld := strided(n)
			xt, ot = grow(xt, in*ld), grow(ot, out*ld)
			shiraTranspose(xt, ld, xtn.Data, n, in, false)
			shiraTranspose(ot, ld, dy, n, out, false)
			if xtn.Grad != nil {
				gxt = grow(gxt, in*ld)
				clear(gxt)
			}
			for o := range out {
				do := ot[o*ld : o*ld+n]
				for k := start[o]; k < start[o+1]; k++ {
					c := int(cols[k])
					if vt.Grad != nil {
						vt.Grad[k] += kernels.Dot(do, xt[c*ld:c*ld+n])
					}
					if xtn.Grad != nil {
						kernels.Axpy(vt.Data[k], do, gxt[c*ld:c*ld+n])
					}
				}
			}
			if xtn.Grad != nil {
				shiraTranspose(xtn.Grad, in, gxt, in, n, true)
			}
		},
	}
}

// shiraTranspose sets (add: adds to) dst, row stride ldd, to the
// transpose of src (rows×cols, row stride len(src)/rows), in 16×16 tiles.
func shiraTranspose(dst []float32, ldd int, src []float32, rows, cols int, add bool) {
	lds := len(src) / rows
	const b = 16
	for r0 := 0; r0 < rows; r0 += b {
		r1 := min(r0+b, rows)
		for c0 := 0; c0 < cols; c0 += b {
			c1 := min(c0+b, cols)
			for r := r0; r < r1; r++ {
				row := src[r*lds+c0 : r*lds+c1]
				if add {
					for c, v := range row {
						dst[(c0+c)*ldd+r] += v
					}
				} else {
					for c, v := range row {
						dst[(c0+c)*ldd+r] = v
					}
				}
			}
		}
	}
}

// shiraMask returns the K mask positions of l (row-major flat indices,
// ascending) for mask_type.
func shiraMask(l *nn.Linear, k int, maskType string, seed uint64) []int32 {
	n := l.Out * l.In
	var pick []int
	switch maskType {
	case "magnitude":
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		w := l.Weight.Data
		slices.SortStableFunc(order, func(a, b int) int {
			return cmp.Compare(math.Abs(float64(w[b])), math.Abs(float64(w[a])))
		})
		pick = order[:k]
	default: // random: HF's random_mask
		pick = nn.NewTorchGenerator(seed).Randperm(n)[:k]
	}
	idx := make([]int32, k)
	for i, p := range pick {
		idx[i] = int32(p)
	}
	slices.Sort(idx)
	return idx
}

type shiraMethod struct{}

func (shiraMethod) Info() Info {
	return Info{
		Name: "shira", Family: "sparse", HasRank: true,
		Paper:     Paper{Title: "Sparse High Rank Adapters", Authors: "Bhardwaj et al.", Year: 2024, ArXiv: "2406.13175"},
		Summary:   "ΔW sparse: r·(out+in) trainable entries of W at fixed mask positions (random or |W0|-magnitude), LoRA-r's budget at high rank",
		RankMeans: "budget: r·(out+in) trainable entries per layer, a rank-r LoRA's count (ΔW's rank is not limited)",
		Options: []Option{
			intOpt("rank", 8, 1, "budget r: r·(out+in) trainable entries per layer (HF r, default 32 there: see the doc comment)"),
			stringOpt("mask_type", "random", []string{"random", "magnitude"},
				"random: HF's random_mask (torch.randperm from random_seed); magnitude: the largest-|W0| entries"),
			{Name: "random_seed", Kind: "int", Default: 67280421310721, Min: fptr(0),
				Doc: "seed of the torch.Generator of the random mask (HF's None = torch's default seed 67280421310721)"},
			boolOpt("init_weights", true, "true: entries start at 0; false: N(0, 1) (HF: for testing)"),
		},
		ParamsFormula: "Σ r·(in+out)",
		AltOptions:    map[string]any{"mask_type": "magnitude", "rank": 4},
	}
}

// CheckLayers checks r·(out+in) ≤ out·in on every layer.
func (shiraMethod) CheckLayers(o Options, layers []LayerShape) error {
	r := o.Int("rank")
	for _, l := range layers {
		if k := r * (l.Out + l.In); k > l.Out*l.In {
			return optionError("shira", "rank", fmt.Sprintf("%d asks r·(out+in) = %d entries of layer %s (%d×%d), which has %d; r ≤ %d fits it",
				r, k, l.Name, l.Out, l.In, l.Out*l.In, l.Out*l.In/(l.Out+l.In)))
		}
	}
	return nil
}

func (shiraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	return attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		k := r * (l.Out + l.In)
		idx := shiraMask(l, k, o.String("mask_type"), uint64(o.Int("random_seed")))
		v := nn.Param(l.Name+".shira_weight", k)
		if !o.Bool("init_weights") {
			rng.FillNormal(v, 0, 1)
		}
		return &SHiRA{Values: v, Idx: idx, f: shiraSparseFunc(idx, l.Out, l.In), dense: shiraDenseFunc(idx),
			Dense: shiraDenseAt(k, l.Out, l.In)}, nil
	})
}

func (shiraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += int64(o.Int("rank")) * int64(l.In+l.Out)
	}
	return n
}

func init() { Register("shira", shiraMethod{}) }
