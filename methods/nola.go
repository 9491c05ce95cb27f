package methods

import (
	"fmt"
	"math"
	"slices"

	"peftbench/nn"
)

// NOLA compresses LoRA with linear combinations of random bases
// (Koohpayegani et al., ICLR 2024), as the authors' code
// (UCDvision/NOLA, NOLALinear inside its LoRA module, GPT-2 and LLaMA alike)
// computes it:
//
//	ΔW = (α/r)·B·A,  A = A₀ + Σ_{i<k} a_i·A_i,  B = Σ_{j<l} b_j·B_j,
//
// with only the coefficients a (k) and b (l) trained. The bases A_i (r×In)
// and B_j (Out×r) are frozen, U(−1, 1)/√k (resp. /√l), drawn from a seed
// (torch.manual_seed(seed); uniform_(−1, 1) over the k×r×In block — the
// authors' GenerateParams); nn.TorchGenerator reproduces that stream, so
// the bases equal the authors' for the same seed. A₀ is the authors'
// frozen offset: their NOLALinear adds its own nn.Linear weight, which
// reset_lora_parameters draws Kaiming-uniform (a = √5, fan-in In) for A
// and sets to 0 for B, and freezes. The coefficients start at 0 (both a
// and b: the paper's card reads "a random"; the code zeroes both), so
// ΔW = 0 at step 0 and b has a gradient through A = A₀ from step 0.
//
// Seeds: the authors draw each NOLALinear's seed from torch.randint; here
// the targeted layer i (in target order) uses basis_seed + 2i for its A
// bases and basis_seed + 2i + 1 for its B bases, so a trial is one config.
// The authors regenerate the bases in every forward and backward pass to
// save memory; here they are generated once at Attach and held (4 bytes ·
// (k·r·In + l·Out·r) per layer): the function and gradients are the same.
// Forming A and B costs k·r·In + l·Out·r multiply-adds per forward pass
// and again in backward, independent of the batch (LoRA's adapter costs
// N·r·(In+Out)), so NOLA's overhead over LoRA shrinks as batches grow.
type NOLA struct {
	CA, CB *nn.Tensor // trained coefficients: k, l
	// BasisA (k × r·In) and BasisB (l × Out·r) hold one basis matrix per
	// row, already divided by √k (√l); A0 (r×In) is the frozen offset.
	BasisA, BasisB, A0 *nn.Tensor
	Rank               int
	Scale              float32
	Dropout            float32

	rng            *nn.RNG
	cacheA, cacheB nolaCache
}

// factors returns A = A₀ + Σ a_i·A_i and B = Σ b_j·B_j in g.
func (m *NOLA) factors(g *nn.Graph, l *nn.Linear) (a, b *nn.Tensor) {
	a = g.Custom(nolaCombine(m.BasisA, &m.cacheA), []int{m.Rank, l.In}, m.CA)
	b = g.Custom(nolaCombine(m.BasisB, &m.cacheB), []int{l.Out, m.Rank}, m.CB)
	return g.Add(a, m.A0), b
}

// nolaCombine is Σ_i c_i·basis_i for coefficients c and the rows of basis:
// a matrix-vector product as plain loops (a GEMM with one row would pack
// the whole basis on every call); backward is dc_i += ⟨dy, basis_i⟩. The
// forward keeps its last coefficients and result in cache and copies the
// result when the coefficients have not changed since (evaluation passes,
// and finite differences that move another layer's coefficients).
func nolaCombine(basis *nn.Tensor, cache *nolaCache) *nn.Func {
	n := basis.Cols()
	return &nn.Func{Name: "nola_combine",
		Forward: func(y []float32, in []*nn.Tensor) {
			if slices.Equal(cache.c, in[0].Data) && len(cache.y) == len(y) {
				copy(y, cache.y)
				return
			}
			clear(y)
			for i, c := range in[0].Data {
				if c == 0 {
					continue
				}
				for j, v := range basis.Data[i*n : (i+1)*n] {
					y[j] += c * v
				}
			}
			cache.c = append(cache.c[:0], in[0].Data...)
			cache.y = append(cache.y[:0], y...)
		},
		Backward: func(dy []float32, in []*nn.Tensor) {
			if in[0].Grad == nil {
				return
			}
			for i := range in[0].Grad {
				var acc float32
				for j, v := range basis.Data[i*n : (i+1)*n] {
					acc += dy[j] * v
				}
				in[0].Grad[i] += acc
			}
		}}
}

// nolaCache is a factor's last coefficients and combination.
type nolaCache struct{ c, y []float32 }

// Forward computes x·W0ᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ, one fused op after
// forming the r×In and Out×r factors.
func (m *NOLA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	a, b := m.factors(g, l)
	return g.LowRankLinear(x, l.Weight, l.Bias, g.Dropout(x, m.Dropout, m.rng), a, b, m.Scale)
}

// Params returns the coefficients of A, then of B.
func (m *NOLA) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: m.CA.Name, T: m.CA, LRMul: 1, Decay: true},
		{Name: m.CB.Name, T: m.CB, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + s·B·A.
func (m *NOLA) Merged(l *nn.Linear) []float32 {
	a, b := m.factors(&nn.Graph{NoGrad: true}, l)
	w := append([]float32(nil), l.Weight.Data...)
	addLowRank(w, b.Data, a.Data, l.Out, m.Rank, l.In, float64(m.Scale))
	return w
}

// nolaBasis returns n basis matrices of rows×cols as an n×(rows·cols)
// tensor: U(−1, 1) from torch.manual_seed(seed), each divided by √n.
func nolaBasis(seed uint64, n, rows, cols int) *nn.Tensor {
	t := nn.New(n, rows*cols)
	nn.NewTorchGenerator(seed).FillUniform(t, -1, 1)
	c := float32(1 / math.Sqrt(float64(n)))
	for i := range t.Data {
		t.Data[i] *= c
	}
	return t
}

type nolaMethod struct{}

func (nolaMethod) Info() Info {
	return Info{
		Name: "nola", Family: "shared-bank", HasRank: true,
		Paper: Paper{Title: "NOLA: Compressing LoRA using Linear Combination of Random Basis",
			Authors: "Koohpayegani et al.", Year: 2023, ArXiv: "2310.02556"},
		Summary: "LoRA's A and B as linear combinations of frozen random bases (A₀ + Σa_iA_i, Σb_jB_j); only the k + l coefficients train",
		Options: []Option{
			intOpt("rank", 8, 1, "rank r of A and B (the authors' GPT-2 runs: 8)"),
			floatOpt("alpha", 8, fptr(0), nil, "scaling numerator α (s = α/r); a number or a multiple of the rank (\"2r\")"),
			intOpt("num_basis", 512, 1, "k: number of random bases of A (the authors' GPT-2 runs: 512)"),
			intOpt("num_basis_b", 0, 0, "l: number of random bases of B; 0 means k (the authors' code uses one num_basis)"),
			intOpt("basis_seed", 0, 0, "seed of layer i's bases: basis_seed + 2i for A, + 2i + 1 for B"),
			{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
		},
		AltOptions:    map[string]any{"rank": 4, "alpha": 16, "num_basis": 64, "num_basis_b": 32, "basis_seed": 5},
		ParamsFormula: "Σ (k + l) per layer",
		// The authors' GPT-2 runs: lr 5e-3 (LoRA's there: 2e-4).
		LR: 5e-3,
	}
}

// nolaCounts returns k and l.
func nolaCounts(o Options) (k, l int) {
	k, l = o.Int("num_basis"), o.Int("num_basis_b")
	if l == 0 {
		l = k
	}
	return k, l
}

func (nolaMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	k, nb := nolaCounts(o)
	if r <= 0 || k <= 0 {
		return nil, fmt.Errorf("methods: nola: rank %d and num_basis %d, want > 0", r, k)
	}
	seed := uint64(o.Int("basis_seed"))
	i := 0
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		m := &NOLA{CA: nn.Param(l.Name+".nola_A.coefficients", k), CB: nn.Param(l.Name+".nola_B.coefficients", nb),
			BasisA: nolaBasis(seed+2*uint64(i), k, r, l.In), BasisB: nolaBasis(seed+2*uint64(i)+1, nb, l.Out, r),
			A0: nn.New(r, l.In), Rank: r, Scale: float32(o.Float("alpha") / float64(r)), Dropout: float32(o.Float("dropout"))}
		m.BasisA.Name, m.BasisB.Name, m.A0.Name = l.Name+".nola_A.basis", l.Name+".nola_B.basis", l.Name+".nola_A.weight"
		rng.KaimingUniform(m.A0, l.In)
		i++
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return nolaAttachment{at}, nil
}

func (nolaMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	k, l := nolaCounts(o)
	return int64(len(layers)) * int64(k+l)
}

// nolaAttachment gives each adapter its own dropout stream.
type nolaAttachment struct{ *layerAttachment }

func (at nolaAttachment) SetTraining(rng *nn.RNG) {
	for _, a := range at.adapters {
		m := a.(*NOLA)
		m.rng = childRNG(rng, m.CA.Name)
	}
}

func init() { Register("nola", nolaMethod{}) }
