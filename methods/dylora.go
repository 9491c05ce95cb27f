package methods

import (
	"fmt"
	"strconv"
	"strings"

	"peftbench/nn"
)

// DyLoRA is dynamic search-free low-rank adaptation (Valipour et al., EACL
// 2023), as the authors' loralib (huawei-noah/Efficient-NLP, DyLoRA/
// loralib/layers.py and DyLoRA.py) implements it: one LoRA pair of rank
// r = r_max, A (r×In) Kaiming-uniform (a = √5), B (Out×r) = 0, trained so
// that every leading block serves as an adapter of its own. Each training
// step draws one rank b uniformly from {r_min, …, r_max} (one b for all
// layers, as the authors' on_step_begin callback sets it on the whole
// model) and the layer computes
//
//	y = x·W0ᵀ + b + (α/b)·(x·A[:b, :]ᵀ)·B[:, :b]ᵀ.
//
// The authors scale each truncated factor by √(r/b) on top of LoRA's α/r,
// which is α/b. In "frozen" mode (their training default, set_rank(…,
// frozen=True)) the first b−1 rows of A and columns of B are detached, so
// only row b of A and column b of B receive a gradient (nested dropout);
// in full mode all b do. The factors stay one tensor each, as in the
// authors' code, so AdamW still moves rows without a gradient this step by
// their momentum and by weight decay, as torch's AdamW does.
//
// b is drawn from the method's own stream (a child of Attach's rng taken
// after the initialisation, so A is LoRA's A at the same seed): b for
// step 0 at Attach, b for step t+1 in AfterStep(t). It is used only while
// training (SetTraining with a non-nil rng). Outside training the layer
// uses r_max, ΔW = (α/r)·B·A, plain LoRA (the authors evaluate at the last
// rank set; here evaluation during training and the final model are the
// full-rank adapter), or the rank of the variant selected with UseVariant:
// variants "r1" … "r<r_max>" evaluate every truncated rank after training,
// as the authors' run_glue.py evaluates ranks 1 … r. Merged follows the
// same rule (selected variant, else r_max), so it always agrees with
// Forward outside training.
type DyLoRA struct {
	A, B  *nn.Tensor // lora_A (r×In), lora_B (Out×r)
	Rank  int        // r_max
	Alpha float32

	st *dyloraState
}

// dyloraState is shared by all adapters of one attachment: the rank of the
// current step, the rank stream, the training flag and the variant.
type dyloraState struct {
	rmin, rmax int
	frozen     bool
	rng        *nn.RNG
	b          int  // rank of the current training step
	training   bool // SetTraining(non-nil)
	variant    int  // rank selected by UseVariant, 0 for none
}

// draw returns the next rank, uniform on {r_min, …, r_max}.
func (st *dyloraState) draw() int { return st.rmin + st.rng.Intn(st.rmax-st.rmin+1) }

// rank returns the rank the layers use now and whether it is a training
// step's rank.
func (st *dyloraState) rank() (int, bool) {
	switch {
	case st.variant > 0:
		return st.variant, false
	case st.training:
		return st.b, true
	}
	return st.rmax, false
}

// Forward computes x·W0ᵀ + b + (α/b)·(x·A[:b]ᵀ)·B[:, :b]ᵀ at the current
// rank b (see DyLoRA).
func (m *DyLoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	b, train := m.st.rank()
	a, bm := m.A, m.B
	switch {
	case train && m.st.frozen && b > 1:
		a = g.ConcatRows(g.Detach(g.SliceRows(m.A, 0, b-1)), g.SliceRows(m.A, b-1, b))
		bm = g.ConcatCols(g.Detach(g.SliceCols(m.B, 0, b-1)), g.SliceCols(m.B, b-1, b))
	case b < m.Rank:
		a, bm = g.SliceRows(m.A, 0, b), g.SliceCols(m.B, 0, b)
	}
	return g.LowRankLinear(x, l.Weight, l.Bias, x, a, bm, m.Alpha/float32(b))
}

// Params returns A and B, both with weight decay.
func (m *DyLoRA) Params() []nn.ParamRef {
	return []nn.ParamRef{
		{Name: m.A.Name, T: m.A, LRMul: 1, Decay: true},
		{Name: m.B.Name, T: m.B, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + (α/b)·B[:, :b]·A[:b] at the selected variant's rank,
// or r_max.
func (m *DyLoRA) Merged(l *nn.Linear) []float32 {
	b := m.Rank
	if m.st.variant > 0 {
		b = m.st.variant
	}
	w := append([]float32(nil), l.Weight.Data...)
	s := float64(m.Alpha) / float64(b)
	acc := make([]float64, l.In)
	for i := range l.Out {
		clear(acc)
		for p := range b {
			bv := float64(m.B.Data[i*m.Rank+p])
			for j, av := range m.A.Data[p*l.In : (p+1)*l.In] {
				acc[j] += bv * float64(av)
			}
		}
		row := w[i*l.In : (i+1)*l.In]
		for j, v := range acc {
			row[j] = float32(float64(row[j]) + s*v)
		}
	}
	return w
}

type dyloraMethod struct{}

func (dyloraMethod) Info() Info {
	return Info{
		Name: "dylora", Family: "lora", HasRank: true,
		RankMeans: "r_max: the largest rank trained; every rank b ≤ r_max is served after training",
		Paper: Paper{Title: "DyLoRA: Parameter Efficient Tuning of Pre-trained Models using Dynamic Search-Free Low-Rank Adaptation",
			Authors: "Valipour et al.", Year: 2022, ArXiv: "2210.07558"},
		Summary: "LoRA trained at a rank b drawn each step from {r_min..r_max} with scale α/b, so every truncation B[:, :b]·A[:b] is an adapter",
		Options: []Option{
			intOpt("rank", 8, 1, "r_max: the rank of A and B (authors' GLUE scripts: 8)"),
			floatOpt("alpha", 16, fptr(0), nil, "scaling numerator α, s = α/b at rank b (authors' scripts: 16); a number or a multiple of the rank (\"2r\")"),
			intOpt("r_min", 1, 1, "smallest rank drawn while training (authors: 1)"),
			boolOpt("frozen", true, "nested dropout: only row b of A and column b of B get a gradient at rank b (authors' default); false trains all b"),
		},
		AltOptions:    map[string]any{"rank": 4, "alpha": 8, "r_min": 2, "frozen": false},
		ParamsFormula: "Σ r_max·(in+out)",
	}
}

// CheckLayers wants r_min ≤ r_max ≤ min(out, in).
func (dyloraMethod) CheckLayers(o Options, layers []LayerShape) error {
	if rmin, r := o.Int("r_min"), o.Int("rank"); rmin > r {
		return optionError("dylora", "r_min", fmt.Sprintf("%d exceeds the rank %d", rmin, r))
	}
	return checkRankFits("dylora", "rank", o.Int("rank"), layers)
}

func (dyloraMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r, rmin := o.Int("rank"), o.Int("r_min")
	if r <= 0 || rmin < 1 || rmin > r {
		return nil, fmt.Errorf("methods: dylora: r_min %d, rank %d: want 1 ≤ r_min ≤ rank", rmin, r)
	}
	st := &dyloraState{rmin: rmin, rmax: r, frozen: o.Bool("frozen")}
	at, err := attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		m := &DyLoRA{A: nn.Param(l.Name+".lora_A", r, l.In), B: nn.Param(l.Name+".lora_B", l.Out, r),
			Rank: r, Alpha: float32(o.Float("alpha")), st: st}
		rng.KaimingUniform(m.A, l.In)
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	st.rng = rng.Child("dylora_rank")
	st.b = st.draw()
	return &dyloraAttachment{at, st}, nil
}

func (dyloraMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += int64(o.Int("rank")) * int64(l.In+l.Out)
	}
	return n
}

// dyloraAttachment draws the next step's rank after each step and serves
// the truncated ranks as variants.
type dyloraAttachment struct {
	*layerAttachment
	st *dyloraState
}

// SetTraining switches the drawn ranks on (rng non-nil) or off; DyLoRA
// has no dropout, so rng itself is not drawn from.
func (at *dyloraAttachment) SetTraining(rng *nn.RNG) { at.st.training = rng != nil }

// AfterStep draws the rank of the next step.
func (at *dyloraAttachment) AfterStep(step, total int) { at.st.b = at.st.draw() }

// Variants returns "r1" … "r<r_max>".
func (at *dyloraAttachment) Variants() []string {
	v := make([]string, at.st.rmax)
	for i := range v {
		v[i] = "r" + strconv.Itoa(i+1)
	}
	return v
}

// UseVariant selects the rank of variant v ("r3": rank 3), or with ""
// returns to the trained adapter (r_max outside training). An unknown
// variant panics: Variants lists the valid ones.
func (at *dyloraAttachment) UseVariant(v string) {
	if v == "" {
		at.st.variant = 0
		return
	}
	b, err := strconv.Atoi(strings.TrimPrefix(v, "r"))
	if !strings.HasPrefix(v, "r") || err != nil || b < 1 || b > at.st.rmax {
		panic(fmt.Sprintf("methods: dylora: unknown variant %q, want r1 … r%d", v, at.st.rmax))
	}
	at.st.variant = b
}

func init() { Register("dylora", dyloraMethod{}) }
