package methods

import (
	"fmt"
	"math"
	"slices"

	"peftbench/nn"
)

// VBLoRA is VB-LoRA, LoRA whose factors are assembled from one vector bank
// shared by every targeted layer (Li et al. 2024, HF PEFT's
// peft.tuners.vblora):
//
//	y = x·W0ᵀ + b + (drop(x)·Aᵀ)·Bᵀ,   ΔW = B·A (no scale),
//
// with the bank V (num_vectors × vector_length = h × b) trainable and
// shared. A (r×In) is cut into r·In/b sub-vectors of length b, B (Out×r)
// into (Out/b)·r; each sub-vector s has its own trainable logits ℓ_s (h)
// and is the top-k admixture
//
//	v_s = Σ_{i ∈ topk(ℓ_s)} softmax(ℓ_s[topk])_i · V_i,
//
// a convex combination of exactly topk bank vectors (the unselected logits
// get no gradient, as torch.topk gives). The layouts are HF's: logits_A is
// (r, In/b, h) and A = mix(logits_A).reshape(r, In); logits_B is
// (Out/b, r, h) and B = mix(logits_B).transpose(1, 2).reshape(Out, r).
//
// Init as HF PEFT: V ~ U(−init_vector_bank_bound, +init_vector_bank_bound),
// logits ~ N(0, init_logits_std²), drawn here from the trial's stream (HF
// draws them from torch's global generator). Both factors are then non-zero,
// so ΔW ≠ 0 at step 0 (Info.RandomInit). HF offers no option that makes
// the default init a no-op; init_vector_bank_bound = 0 does (V = 0 ⇒
// A = B = 0), and that is Info.IdentityOptions, but it is a saddle point:
// every gradient of ΔW = B·A vanishes when A = B = 0, so a model started
// there never trains (HF's docs warn against a zero bank for this reason).
//
// vector_length must divide every targeted layer's In and Out (HF raises
// otherwise; CheckLayers refuses). HF's default 256 divides none of our
// layers (64 and 128 wide, 784 inputs), so the default here is 16: it
// divides every hidden layer of every task and of the reference models
// (784 = 49·16). No length above 1 divides the task heads' 10, 5, 26 or 98
// outputs, so a sweep that targets a head with VB-LoRA must set
// vector_length to a divisor of its width or leave the head out of its
// targets. HF's docs recommend a learning rate of ~1e-2 for the logits and
// ~1e-3 for the bank (HF's config has no per-group rate; neither does this
// one). save_only_topk_weights changes only what HF saves, not training,
// and is not an option here.
//
// Speed: building A and B costs a top-k over h logits per sub-vector
// (kept from forward for backward), and AdamW updates every logit,
// r·(In+Out)·h/b per layer, many more numbers than LoRA's factors (HF
// trains the same tensors); a default step costs about 2.5× LoRA's.
type VBLoRA struct {
	Bank    *nn.Tensor // shared vector bank, num_vectors × vector_length
	LogitsA *nn.Tensor // r × In/b × h
	LogitsB *nn.Tensor // Out/b × r × h
	Rank    int
	TopK    int
	Dropout float32

	fa, fb *nn.Func
	rng    *nn.RNG
}

// newVBLoRA returns the adapter of l with its logits drawn from rng.
func newVBLoRA(l *nn.Linear, bank *nn.Tensor, r, topk int, std float32, rng *nn.RNG) *VBLoRA {
	h, b := bank.Shape[0], bank.Shape[1]
	v := &VBLoRA{Bank: bank, Rank: r, TopK: topk}
	v.LogitsA = nn.Param(l.Name+".vblora_logits_A", r, l.In/b, h)
	v.LogitsB = nn.Param(l.Name+".vblora_logits_B", l.Out/b, r, h)
	rng.FillNormal(v.LogitsA, 0, std)
	rng.FillNormal(v.LogitsB, 0, std)
	// A (r×In): sub-vector s = p·(In/b) + t fills A[p, t·b:(t+1)·b],
	// that is A's memory at s·b + c.
	v.fa = vbMix("vblora_A", topk, func(s, c int) int { return s*b + c })
	// B (Out×r): sub-vector s = t·r + p fills B[t·b:(t+1)·b, p].
	v.fb = vbMix("vblora_B", topk, func(s, c int) int { return (s/r*b+c)*r + s%r })
	return v
}

// factors returns A (r×In) and B (Out×r) in g.
func (v *VBLoRA) factors(g *nn.Graph, l *nn.Linear) (a, bm *nn.Tensor) {
	a = g.Custom(v.fa, []int{v.Rank, l.In}, v.LogitsA, v.Bank)
	bm = g.Custom(v.fb, []int{l.Out, v.Rank}, v.LogitsB, v.Bank)
	return a, bm
}

// Forward computes x·W0ᵀ + b + (drop(x)·Aᵀ)·Bᵀ.
func (v *VBLoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	a, bm := v.factors(g, l)
	return g.LowRankLinear(x, l.Weight, l.Bias, g.Dropout(x, v.Dropout, v.rng), a, bm, 1)
}

// Params returns this layer's logits; the shared bank is the attachment's.
func (v *VBLoRA) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: v.LogitsA.Name, T: v.LogitsA, LRMul: 1, Decay: true},
		{Name: v.LogitsB.Name, T: v.LogitsB, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + B·A.
func (v *VBLoRA) Merged(l *nn.Linear) []float32 {
	g := &nn.Graph{NoGrad: true}
	a, bm := v.factors(g, l)
	w := append([]float32(nil), l.Weight.Data...)
	addLowRank(w, bm.Data, a.Data, l.Out, v.Rank, l.In, 1)
	return w
}

// vbMix is the top-k admixture as a graph op: inputs logits (n sub-vectors
// × h, any leading shape) and the bank (h × b); sub-vector s's element c
// goes to output position place(s, c). Forward keeps the selection (indices
// and softmax weights) with a copy of the logits it came from; Backward
// reuses it when the logits are unchanged and selects again otherwise.
func vbMix(name string, k int, place func(s, c int) int) *nn.Func {
	var seen []float32 // the logits the selection below was made from
	var idx []int      // n·k selected bank rows, descending logits
	var wts []float64  // their softmax weights
	sel := func(logits []float32, h int) {
		n := len(logits) / h
		seen = append(seen[:0], logits...)
		idx = slices.Grow(idx[:0], n*k)[:n*k]
		wts = slices.Grow(wts[:0], n*k)[:n*k]
		for s := range n {
			vbTopK(logits[s*h:(s+1)*h], idx[s*k:(s+1)*k], wts[s*k:(s+1)*k])
		}
	}
	return &nn.Func{
		Name: name,
		Forward: func(y []float32, in []*nn.Tensor) {
			logits, bank := in[0], in[1]
			h, b := bank.Shape[0], bank.Shape[1]
			sel(logits.Data, h)
			for s := range len(logits.Data) / h {
				ix, w := idx[s*k:(s+1)*k], wts[s*k:(s+1)*k]
				for c := range b {
					var acc float64
					for i, j := range ix {
						acc += w[i] * float64(bank.Data[j*b+c])
					}
					y[place(s, c)] = float32(acc)
				}
			}
		},
		Backward: func(dy []float32, in []*nn.Tensor) {
			logits, bank := in[0], in[1]
			h, b := bank.Shape[0], bank.Shape[1]
			if !slices.Equal(seen, logits.Data) {
				sel(logits.Data, h)
			}
			dw := make([]float64, k)
			for s := range len(logits.Data) / h {
				ix, w := idx[s*k:(s+1)*k], wts[s*k:(s+1)*k]
				var dot float64
				for i, j := range ix {
					var d float64
					for c := range b {
						g := dy[place(s, c)]
						d += float64(g) * float64(bank.Data[j*b+c])
						if bank.Grad != nil {
							bank.Grad[j*b+c] += float32(w[i] * float64(g))
						}
					}
					dw[i] = d
					dot += w[i] * d
				}
				if logits.Grad != nil { // softmax backward on the selected logits
					for i, j := range ix {
						logits.Grad[s*h+j] += float32(w[i] * (dw[i] - dot))
					}
				}
			}
		},
	}
}

// vbTopK writes the indices of the len(idx) largest logits (descending;
// the lower index first on a tie) and the softmax of those logits.
func vbTopK(logits []float32, idx []int, w []float64) {
	k := len(idx)
	insert := func(j, n int) { // into idx[:n], kept descending, n < k or drop the last
		p := min(n, k-1)
		v := logits[j]
		for p > 0 && logits[idx[p-1]] < v {
			idx[p] = idx[p-1]
			p--
		}
		idx[p] = j
	}
	for j := range k {
		insert(j, j)
	}
	thr := logits[idx[k-1]]
	for j := k; j < len(logits); j++ {
		if logits[j] <= thr {
			continue
		}
		insert(j, k)
		thr = logits[idx[k-1]]
	}
	m := float64(logits[idx[0]])
	var z float64
	for i, j := range idx {
		w[i] = math.Exp(float64(logits[j]) - m)
		z += w[i]
	}
	for i := range w {
		w[i] /= z
	}
}

type vbloraMethod struct{}

func (vbloraMethod) Info() Info {
	return Info{
		Name: "vblora", Family: "shared-bank", HasRank: true,
		Paper: Paper{Title: "VB-LoRA: Extreme Parameter Efficient Fine-Tuning with Vector Banks",
			Authors: "Li et al.", Year: 2024, ArXiv: "2405.15179"},
		Summary: "ΔW = B·A with every length-b sub-vector of A and B a softmax-weighted mix of its top-k vectors from one trainable bank shared by all layers",
		Options: []Option{
			intOpt("rank", 4, 1, "rank r of A and B"),
			intOpt("num_vectors", 256, 1, "number of vectors h in the shared bank"),
			intOpt("vector_length", 16, 1, "length b of each bank vector; must divide every targeted layer's in and out (HF's default 256 fits none of our layers)"),
			intOpt("topk", 2, 1, "number k of bank vectors mixed into each sub-vector"),
			{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training (vblora_dropout)"},
			floatOpt("init_vector_bank_bound", 0.02, fptr(0), nil, "the bank starts U(−bound, bound); 0 gives ΔW = 0 but no gradient"),
			floatOpt("init_logits_std", 0.1, fptr(0), nil, "the logits start N(0, std²)"),
		},
		ParamsFormula: "h·b + Σ r·(in+out)·h/b (h = num_vectors, b = vector_length)",
		RandomInit:    "bank U(−0.02, 0.02) and logits N(0, 0.1²) make A and B non-zero, so ΔW = B·A ≠ 0 at step 0",
		// A zero bank starts at the base model but never trains (ΔW = B·A
		// has zero gradient at A = B = 0); HF has no trainable no-op init.
		IdentityOptions: map[string]any{"init_vector_bank_bound": 0.0},
		AltOptions:      map[string]any{"rank": 8, "num_vectors": 64, "vector_length": 8, "topk": 3, "init_logits_std": 0.5},
	}
}

// CheckLayers refuses a vector_length that does not divide a layer's in or
// out, a topk above num_vectors and a rank above min(out, in).
func (vbloraMethod) CheckLayers(o Options, layers []LayerShape) error {
	b := o.Int("vector_length")
	if k, h := o.Int("topk"), o.Int("num_vectors"); k > h {
		return optionError("vblora", "topk", fmt.Sprintf("%d exceeds num_vectors = %d", k, h))
	}
	for _, l := range layers {
		if l.In%b != 0 || l.Out%b != 0 {
			return optionError("vblora", "vector_length", fmt.Sprintf("%d does not divide the in and out features of layer %s (%d×%d); choose a common divisor or leave the layer out of the targets", b, l.Name, l.Out, l.In))
		}
	}
	return checkRankFits("vblora", "rank", o.Int("rank"), layers)
}

func (vbloraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	h, b := o.Int("num_vectors"), o.Int("vector_length")
	bank := nn.Param("vblora_vector_bank", h, b)
	bound := float32(o.Float("init_vector_bank_bound"))
	rng.FillUniform(bank, -bound, bound)
	r, k := o.Int("rank"), o.Int("topk")
	std := float32(o.Float("init_logits_std"))
	var vs []*VBLoRA
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		if l.In%b != 0 || l.Out%b != 0 {
			return nil, fmt.Errorf("methods: vblora: vector_length %d does not divide layer %s (%d×%d)", b, l.Name, l.Out, l.In)
		}
		v := newVBLoRA(l, bank, r, k, std, rng)
		v.Dropout = float32(o.Float("dropout"))
		vs = append(vs, v)
		return v, nil
	})
	if err != nil {
		return nil, err
	}
	at.shared = []nn.ParamRef{{Name: bank.Name, T: bank, LRMul: 1, Decay: true}}
	return &vbloraAttachment{at, vs}, nil
}

func (vbloraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	h, b, r := int64(o.Int("num_vectors")), int64(o.Int("vector_length")), int64(o.Int("rank"))
	n := h * b
	for _, l := range layers {
		n += r * (int64(l.In)/b + int64(l.Out)/b) * h
	}
	return n
}

// vbloraAttachment adds dropout's random stream to layerAttachment.
type vbloraAttachment struct {
	*layerAttachment
	adapters []*VBLoRA
}

func (at *vbloraAttachment) SetTraining(rng *nn.RNG) {
	for _, v := range at.adapters {
		v.rng = childRNG(rng, v.LogitsA.Name)
	}
}

func init() { Register("vblora", vbloraMethod{}) }
