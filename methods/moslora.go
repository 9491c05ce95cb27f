package methods

import (
	"fmt"

	"peftbench/nn"
)

// MoSLoRA is mixture-of-subspaces LoRA (Wu et al. 2024), as the authors'
// code (wutaiqiang/MoSLoRA, a patched HF PEFT: lora_use_mixer) implements
// it for linear layers: a trainable r×r mixer M between LoRA's factors,
//
//	ΔW = (α/r)·B·M·A,  y = x·W0ᵀ + b + (α/r)·((x·Aᵀ)·Mᵀ)·Bᵀ,
//
// A (r×In), M (r×r, their lora_AB), B (Out×r). Init as their
// reset_lora_parameters: A Kaiming-uniform (a = √5, fan-in In), or
// N(0, 1/r²) with init "gaussian"; M Kaiming-uniform (a = √5, fan-in r),
// their default (nn.init.orthogonal_ is the commented-out alternative the
// paper ablates, mixer_init "orthogonal" here: torch's recipe, the Q of a
// Gaussian matrix's QR with columns signed by diag(R)); B = 0, so ΔW = 0.
// The forward pass folds the mixer into A (M·A, r·r·In) and applies the
// fused low-rank op, never forming the dense ΔW.
type MoSLoRA struct {
	A, M, B *nn.Tensor // lora_A (r×In), lora_AB (r×r), lora_B (Out×r)
	Rank    int
	Scale   float32
}

// Forward computes x·W0ᵀ + b + s·(x·(M·A)ᵀ)·Bᵀ.
func (m *MoSLoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	return g.LowRankLinear(x, l.Weight, l.Bias, x, g.MatMul(m.M, m.A, false, false), m.B, m.Scale)
}

// Params returns A, the mixer M and B, all with weight decay.
func (m *MoSLoRA) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: m.A.Name, T: m.A, LRMul: 1, Decay: true},
		{Name: m.M.Name, T: m.M, LRMul: 1, Decay: true},
		{Name: m.B.Name, T: m.B, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + s·B·M·A.
func (m *MoSLoRA) Merged(l *nn.Linear) []float32 {
	r := m.Rank
	ma := make([]float32, r*l.In) // M·A, accumulated in float64
	acc := make([]float64, l.In)
	for i := range r {
		clear(acc)
		for p := range r {
			mv := float64(m.M.Data[i*r+p])
			for j, av := range m.A.Data[p*l.In : (p+1)*l.In] {
				acc[j] += mv * float64(av)
			}
		}
		for j, v := range acc {
			ma[i*l.In+j] = float32(v)
		}
	}
	w := append([]float32(nil), l.Weight.Data...)
	addLowRank(w, m.B.Data, ma, l.Out, r, l.In, float64(m.Scale))
	return w
}

type mosloraMethod struct{}

func (mosloraMethod) Info() Info {
	return Info{
		Name: "moslora", Family: "lora", HasRank: true,
		Paper: Paper{Title: "Mixture-of-Subspaces in Low-Rank Adaptation",
			Authors: "Wu et al.", Year: 2024, ArXiv: "2406.11909"},
		Summary: "ΔW = (α/r)·B·M·A with a trainable r×r mixer M (Kaiming-uniform) between LoRA's factors; B = 0",
		Options: []Option{
			intOpt("rank", 16, 1, "rank r (authors' commonsense script: 16)"),
			floatOpt("alpha", 32, fptr(0), nil, "scaling numerator α, s = α/r (authors: 32); a number or a multiple of the rank (\"2r\")"),
			stringOpt("init", "kaiming", []string{"kaiming", "gaussian"}, "A's init: Kaiming-uniform (a = √5) or N(0, 1/r²) (HF's init_lora_weights \"gaussian\")"),
			stringOpt("mixer_init", "kaiming", []string{"kaiming", "orthogonal"}, "the mixer's init: Kaiming-uniform (a = √5, the authors' default) or orthogonal (their ablation)"),
		},
		AltOptions:    map[string]any{"rank": 4, "alpha": 8, "init": "gaussian", "mixer_init": "orthogonal"},
		ParamsFormula: "Σ r·(in+out) + r²",
	}
}

func (mosloraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	init, mix := o.String("init"), o.String("mixer_init")
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		if r <= 0 {
			return nil, fmt.Errorf("methods: moslora: %s: rank %d, want > 0", l.Name, r)
		}
		m := &MoSLoRA{A: nn.Param(l.Name+".lora_A", r, l.In), M: nn.Param(l.Name+".lora_AB", r, r),
			B: nn.Param(l.Name+".lora_B", l.Out, r), Rank: r, Scale: float32(o.Float("alpha") / float64(r))}
		switch init {
		case "kaiming":
			rng.KaimingUniform(m.A, l.In)
		case "gaussian":
			rng.FillNormal(m.A, 0, 1/float32(r))
		default:
			return nil, fmt.Errorf("methods: moslora: unknown init %q", init)
		}
		switch mix {
		case "kaiming":
			rng.KaimingUniform(m.M, r)
		case "orthogonal":
			orthogonalInit(m.M, rng)
		default:
			return nil, fmt.Errorf("methods: moslora: unknown mixer_init %q", mix)
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return at, nil
}

// orthogonalInit fills the square t with torch.nn.init.orthogonal_'s
// recipe: Q of the QR of a standard Gaussian matrix, each column j
// multiplied by the sign of R[j, j], drawn from rng.
func orthogonalInit(t *nn.Tensor, rng *nn.RNG) {
	n := t.Shape[0]
	rng.FillNormal(t, 0, 1)
	q, r := qr(t.Data, n, n)
	for i := range n {
		for j := range n {
			v := q.At(i, j)
			if r.At(j, j) < 0 {
				v = -v
			}
			t.Data[i*n+j] = float32(v)
		}
	}
}

func (mosloraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	r := int64(o.Int("rank"))
	var n int64
	for _, l := range layers {
		n += r*int64(l.In+l.Out) + r*r
	}
	return n
}

func init() { Register("moslora", mosloraMethod{}) }
