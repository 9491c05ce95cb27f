package methods

import (
	"fmt"
	"strings"

	"peftbench/internal/targets"
	"peftbench/nn"
)

// IA3 is (IA)³, infused adapter by inhibiting and amplifying inner
// activations (Liu et al. 2022), as HF PEFT's peft.tuners.ia3 computes it:
// one trainable vector l per targeted layer rescales either its output or
// its input,
//
//	y = l ⊙ (x·W0ᵀ + b),   l ∈ R^Out   (non-feedforward layers: q, k, v, …)
//	y = (l ⊙ x)·W0ᵀ + b,   l ∈ R^In    (feedforward layers: the down projection)
//
// so W' = diag(l)·W0 with b' = l ⊙ b, or W' = W0·diag(l) with b' = b. l
// starts at 1 (init_ia3_weights = true: the base model); with
// init_ia3_weights = false it is drawn N(0, 1) from the trial's stream, as
// HF's torch.randn (then the step-0 model is not the base). Only the vectors
// train; Merged and MergedBias fold l into W0 and, for the output form, b,
// exactly as HF's merge does.
//
// feedforward_modules names the targeted layers that take the input form:
// a comma-separated list of layer-name patterns matched as target names
// are (targets.Match: "fc2" is the layer fc2 or any *.fc2, globs,
// "re:…"). HF PEFT's default comes from the architecture (LLaMA:
// feedforward_modules = ["down_proj"] of targets k_proj, v_proj, down_proj);
// ours mirrors it: "mlp.down", the transformer's down projection
// (blocks.N.mlp.down). The MLP tasks' fc1 and fc2 are not down projections
// of a gated block, so by default they take the output form; "" makes every
// layer output-form. HF requires feedforward_modules ⊆ target_modules; here
// a pattern that matches no targeted layer is allowed (the default on the
// MLP tasks), since the targets are a task-level setting.
type IA3 struct {
	L *nn.Tensor // ia3_l: Out (output form) or In (feedforward form)
	// Feedforward selects the input form y = (l ⊙ x)·W0ᵀ + b.
	Feedforward bool
}

// Forward computes l ⊙ (x·W0ᵀ + b) or (l ⊙ x)·W0ᵀ + b.
func (a *IA3) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	if a.Feedforward {
		return g.Linear(g.MulRow(x, a.L), l.Weight, l.Bias)
	}
	return g.MulRow(l.Base(g, x), a.L)
}

// Params returns l, with weight decay (HF's Trainer decays every parameter
// whose name is not a bias or a norm).
func (a *IA3) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: a.L.Name, T: a.L, LRMul: 1, Decay: true}}
}

// Merged returns diag(l)·W0 (output form) or W0·diag(l) (feedforward).
func (a *IA3) Merged(l *nn.Linear) []float32 {
	w := append([]float32(nil), l.Weight.Data...)
	for i := range l.Out {
		row := w[i*l.In : (i+1)*l.In]
		for j := range row {
			if a.Feedforward {
				row[j] *= a.L.Data[j]
			} else {
				row[j] *= a.L.Data[i]
			}
		}
	}
	return w
}

// MergedBias returns l ⊙ b (output form) or b (feedforward).
func (a *IA3) MergedBias(l *nn.Linear) []float32 {
	if l.Bias == nil {
		return nil
	}
	b := append([]float32(nil), l.Bias.Data...)
	if !a.Feedforward {
		for i := range b {
			b[i] *= a.L.Data[i]
		}
	}
	return b
}

type ia3Method struct{}

func (ia3Method) Info() Info {
	return Info{
		Name: "ia3", Family: "vector-scaling",
		Paper:   Paper{Title: "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context Learning", Authors: "Liu et al.", Year: 2022, ArXiv: "2205.05638"},
		Summary: "rescale each layer's output (or, for feedforward layers, input) by a trained vector l, l = 1 at start",
		// The alt set puts every layer of both reference models in the
		// input form, which the defaults use for mlp.down only.
		AltOptions: map[string]any{"feedforward_modules": "fc1,fc2,up,down"},
		Options: []Option{
			stringOpt("feedforward_modules", "mlp.down", nil, "comma-separated layer-name patterns (as targets) of the layers scaled on their input, (l ⊙ x)·W0ᵀ + b; the others scale their output; \"\" for none"),
			boolOpt("init_ia3_weights", true, "l = 1 (the base model); false draws l ~ N(0, 1)"),
		},
		ParamsFormula: "Σ out (in for feedforward layers)",
		// HF PEFT's MetaMathQA runs use 1e-3 and 5e-3, above LoRA's 1e-4.
		LR: 3e-3,
	}
}

// ia3Patterns splits feedforward_modules into its patterns.
func ia3Patterns(o Options) ([]string, error) {
	s := strings.TrimSpace(o.String("feedforward_modules"))
	if s == "" {
		return nil, nil
	}
	var ps []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, optionError("ia3", "feedforward_modules", fmt.Sprintf("%q has an empty pattern", s))
		}
		if _, err := targets.Match(p, "x"); err != nil {
			return nil, optionError("ia3", "feedforward_modules", err.Error())
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// ia3Feedforward reports whether a layer name matches any pattern.
func ia3Feedforward(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := targets.Match(p, name); ok {
			return true
		}
	}
	return false
}

// CheckLayers checks that feedforward_modules parses; any layer shape fits.
func (ia3Method) CheckLayers(o Options, _ []LayerShape) error {
	_, err := ia3Patterns(o)
	return err
}

func (ia3Method) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	ps, err := ia3Patterns(o)
	if err != nil {
		return nil, err
	}
	return attachEach(layers, func(l *nn.Linear) (nn.Adapter, error) {
		ff := ia3Feedforward(ps, l.Name)
		n := l.Out
		if ff {
			n = l.In
		}
		v := nn.Param(l.Name+".ia3_l", n)
		if o.Bool("init_ia3_weights") {
			for i := range v.Data {
				v.Data[i] = 1
			}
		} else {
			rng.FillNormal(v, 0, 1)
		}
		return &IA3{L: v, Feedforward: ff}, nil
	})
}

func (ia3Method) TrainableParams(layers []LayerShape, o Options) int64 {
	ps, _ := ia3Patterns(o)
	var n int64
	for _, l := range layers {
		if ia3Feedforward(ps, l.Name) {
			n += int64(l.In)
		} else {
			n += int64(l.Out)
		}
	}
	return n
}

func init() { Register("ia3", ia3Method{}) }
