package methods

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"peftbench/nn"
)

// LN tuning (HF PEFT's peft.tuners.ln_tuning; Zhao et al. 2023) trains a
// copy of each targeted norm layer and nothing else:
//
//	LayerNorm: y = x̂ ⊙ γ' + β'      RMSNorm: y = x/rms(x) ⊙ γ'
//
// with γ' and β' initialised to the base γ and β, so the adapted model is
// the base model at step 0, and every linear layer, embedding and
// untargeted norm frozen. HF PEFT's LNTuningLayer deep-copies the base
// norm into ln_tuning_layers and forwards through the copy; merging swaps
// the copy in for the base module (nn.Norm.Merge copies it in).
//
// It is a NormTuner: the trainer attaches it to the model's norm layers
// (nn.Model.Norms), not to the sweep's targeted linear layers, which it
// ignores; Attach on linear layers is an error, and a task whose model has
// no norm layer (the MLP tasks) is refused when the sweep loads. Its
// target_modules option is HF's: which norms to tune, a regular
// expression that must match a norm's whole dotted name (HF's re.fullmatch
// for a string target_modules), or "" for every norm, which is what HF
// PEFT's per-architecture default targets for GPT-2-style models (ln_1,
// ln_2, ln_f; ours are blocks.{i}.ln1, blocks.{i}.ln2, ln_f).
//
// γ' and β' train without weight decay, as the transformers Trainer that
// HF PEFT's examples use excludes norm weights and biases from decay
// (nn.ParamRef.Decay false, like the base model's norms in pretraining).
// No random draw: rng is unused.
type lnTuning struct{}

func init() { Register("ln-tuning", lnTuning{}) }

func (lnTuning) Info() Info {
	return Info{
		Name: "ln-tuning", Family: "norm-tuning",
		Paper: Paper{
			Title:   "Tuning LayerNorm in Attention: Towards Efficient Multi-Modal LLM Finetuning",
			Authors: "Zhao et al.", Year: 2023, ArXiv: "2312.11420",
		},
		Summary: "train a copy of each norm layer's γ (and β); every linear layer stays frozen",
		HasRank: false,
		Options: []Option{
			stringOpt("target_modules", "", nil, "norm layers to tune: a regular expression matching a norm's whole dotted name (blocks.0.ln1, ln_f), or \"\" for every norm layer"),
		},
		ParamsFormula: "Σ dim (+ dim with β) over the tuned norms",
		AltOptions:    map[string]any{"target_modules": `blocks\.\d+\.ln[12]`},
	}
}

// Attach refuses linear layers: LN tuning adapts norm layers (AttachNorms).
func (lnTuning) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	return nil, errors.New("methods: ln-tuning adapts norm layers, not linear layers: attach it with AttachNorms to the model's Norms")
}

// TrainableParams is 0: LN tuning trains no linear layer (see
// TrainableNormParams).
func (lnTuning) TrainableParams(layers []LayerShape, o Options) int64 { return 0 }

// CheckLayers accepts any linear targets: LN tuning ignores them.
func (lnTuning) CheckLayers(o Options, layers []LayerShape) error { return nil }

// targeted returns the indices of the norms that target_modules selects.
func (lnTuning) targeted(o Options, norms []NormShape) ([]int, error) {
	p := o.String("target_modules")
	var re *regexp.Regexp
	if p != "" {
		var err error
		if re, err = regexp.Compile(`^(?:` + p + `)$`); err != nil {
			return nil, optionError("ln-tuning", "target_modules", fmt.Sprintf("bad regular expression %q: %v", p, err))
		}
	}
	var idx []int
	for i, n := range norms {
		if re == nil || re.MatchString(n.Name) {
			idx = append(idx, i)
		}
	}
	return idx, nil
}

func (m lnTuning) CheckNorms(o Options, norms []NormShape) error {
	if len(norms) == 0 {
		return errors.New("ln-tuning: the model has no norm layers (LayerNorm, RMSNorm) to tune")
	}
	idx, err := m.targeted(o, norms)
	if err != nil {
		return err
	}
	if len(idx) == 0 {
		names := make([]string, len(norms))
		for i, n := range norms {
			names[i] = n.Name
		}
		return optionError("ln-tuning", "target_modules", fmt.Sprintf("%q matches no norm layer; norms: %s", o.String("target_modules"), strings.Join(names, ", ")))
	}
	return nil
}

func (m lnTuning) TrainableNormParams(norms []NormShape, o Options) int64 {
	idx, _ := m.targeted(o, norms)
	var n int64
	for _, i := range idx {
		n += int64(norms[i].Dim)
		if norms[i].Bias {
			n += int64(norms[i].Dim)
		}
	}
	return n
}

func (m lnTuning) AttachNorms(norms []*nn.Norm, o Options, rng *nn.RNG) (Attachment, error) {
	idx, err := m.targeted(o, NormShapes(norms))
	if err != nil {
		return nil, err
	}
	at := &lnAttachment{}
	for _, i := range idx {
		n := norms[i]
		c := n.Copy()
		c.Weight.Name = n.Name + ".ln_tuning.weight"
		c.Weight.SetRequiresGrad(true)
		at.params = append(at.params, nn.ParamRef{Name: c.Weight.Name, T: c.Weight, LRMul: 1})
		if c.Bias != nil {
			c.Bias.Name = n.Name + ".ln_tuning.bias"
			c.Bias.SetRequiresGrad(true)
			at.params = append(at.params, nn.ParamRef{Name: c.Bias.Name, T: c.Bias, LRMul: 1})
		}
		n.Tuned = c
		at.norms = append(at.norms, n)
	}
	return at, nil
}

// lnAttachment is LN tuning attached to a model's norms.
type lnAttachment struct {
	norms  []*nn.Norm
	params []nn.ParamRef
}

func (a *lnAttachment) Params() []nn.ParamRef { return a.params }

// Layers is empty: LN tuning adapts no linear layer.
func (a *lnAttachment) Layers() []*nn.Linear { return nil }

// Norms returns the tuned norms, in the model's order.
func (a *lnAttachment) Norms() []*nn.Norm { return a.norms }

// SetTraining does nothing: LN tuning has no training-time randomness.
func (a *lnAttachment) SetTraining(*nn.RNG) {}
