package methods

import (
	"math"
	"strings"

	"peftbench/nn"
)

// CoTo is LoRA trained with CoTo's progressive activation (Zhuang et al.,
// ICML 2025, "Come Together, But Not Right Now"), as the authors' code
// (github.com/zwebzone/coto, CoToSchedulerCallback) does it:
//
//	y = x·W0ᵀ + b + δ·s·(drop(x)·Aᵀ)·Bᵀ,  δ ~ Bernoulli(p(t)) per group and step,
//	p(t) = min(p_T, p_0 + (p_T − p_0)·t / ⌈stage1_ratio·T⌉),
//
// t the optimiser step (from 0) of T. Defaults are the callback's:
// p_0 = initial_p = 0.1, p_T = final_p = 1, stage1_ratio = 0.75, so every
// adapter is on for the last quarter of training. A group (group =
// "layer", the default) is the adapters of one transformer layer — the
// layers whose names share the prefix up to their first numeric component
// ("blocks.3", "model.layers.3"); the callback groups module_num
// consecutive adapters, one per target module, which is the same thing.
// group = "adapter" draws every adapter alone; a layer name without a
// numeric component is a group of its own. One uniform u per group
// decides, δ = [u ≤ p(t)], and the draw is repeated until at least one
// group is on (the callback's generate_random_tensor). A switched-off
// adapter contributes nothing and is not rescaled (the callback's
// cotodrop returns the base layer's output; no 1/p as in dropout), and
// evaluation (SetTraining(nil)) and Merged use every adapter, as the
// authors' model does at inference. A switched-off adapter takes no part
// in the step: the optimiser skips its A and B (BeforeStep hides their
// gradients), as torch's AdamW skips parameters whose grad is None after
// the HF Trainer's zero_grad(set_to_none=True) (torch ≥ 2) — no moment
// update, no weight decay, no step counted.
//
// The adapter is LoRA's (A Kaiming-uniform, B = 0, s = α/r, HF PEFT's
// defaults r = 8, α = 8), so step 0 is the base model.
//
// Randomness: the draws come from the trial's dropout stream (SetTraining:
// a child stream "coto" of it), not torch's global generator, so
// evaluation and trials are deterministic. A step's draw is made at its
// first training forward pass and held for the step (the callback flips
// its flags once per optimiser step, so micro-batches of a step share
// them); AfterStep moves p to the next step's value (the callback's
// on_step_end with global_step = t + 1).
type CoTo struct {
	*LoRA
	at    *cotoAttachment
	group int
}

// Forward computes the base output while the adapter's group is off,
// LoRA's output otherwise.
func (c *CoTo) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	if c.at.off(c.group) {
		return l.Base(g, x)
	}
	return c.LoRA.Forward(g, l, x)
}

type cotoAttachment struct {
	*loraAttachment
	p0, p1, ratio float64
	groups        int
	// P is the activation probability of the current step's draw.
	P float64
	// rng is the mask stream while training, nil in evaluation.
	rng   *nn.RNG
	stale bool
	// Off is, per group, whether the current step switches it off.
	Off    []bool
	hidden []hiddenGrad
}

// off reports whether group k is switched off in the current training
// step, drawing the step's groups first if they are stale.
func (at *cotoAttachment) off(k int) bool {
	if at.rng == nil {
		return false
	}
	if at.stale {
		at.draw()
	}
	return at.Off[k]
}

// draw sets Off: u ~ U[0, 1) per group, off when u > P, redrawn until a
// group is on.
func (at *cotoAttachment) draw() {
	for {
		on := false
		for k := range at.Off {
			at.Off[k] = float64(at.rng.Float32()) > at.P
			on = on || !at.Off[k]
		}
		if on {
			break
		}
	}
	at.stale = false
}

// SetTraining switches the schedule's draws on (from a child stream of
// rng) or off (nil: every adapter on), and LoRA dropout with them.
func (at *cotoAttachment) SetTraining(rng *nn.RNG) {
	at.rng = nil
	if rng != nil {
		at.rng = rng.Child("coto")
		at.stale = true
	}
	at.loraAttachment.SetTraining(rng)
}

// BeforeStep hides the gradients of this step's switched-off adapters
// from the optimiser, which then skips them (no moment update, no weight
// decay, no step counted): torch's AdamW skips a parameter whose grad is
// None, as it is for an adapter that took no part in the forward pass
// after zero_grad(set_to_none=True).
func (at *cotoAttachment) BeforeStep(step, total int) {
	if at.rng == nil || at.stale {
		return // no training forward pass drew this step's groups
	}
	for _, l := range at.layers {
		c := l.Adapter.(*CoTo)
		if !at.Off[c.group] {
			continue
		}
		for _, t := range []*nn.Tensor{c.A, c.B} {
			if t.Grad != nil {
				at.hidden = append(at.hidden, hiddenGrad{t, t.Grad})
				t.Grad = nil
			}
		}
	}
}

// hiddenGrad is a gradient buffer BeforeStep took from its tensor.
type hiddenGrad struct {
	t    *nn.Tensor
	grad []float32
}

// AfterStep gives the hidden gradients back and sets P to the next step's
// probability; its groups are drawn at its first training forward pass.
func (at *cotoAttachment) AfterStep(step, total int) {
	for _, h := range at.hidden {
		h.t.Grad = h.grad
	}
	at.hidden = at.hidden[:0]
	at.P = cotoProb(step+1, total, at.p0, at.p1, at.ratio)
	at.stale = true
}

// cotoProb is the activation probability at step t (from 0) of total:
// linear from p0 at t = 0 to p1 at ⌈ratio·total⌉, then p1.
func cotoProb(t, total int, p0, p1, ratio float64) float64 {
	end := math.Ceil(float64(total) * ratio)
	if end <= 0 {
		return p1
	}
	return min(p1, p0+(p1-p0)*float64(t)/end)
}

// layerGroup is the name of the transformer layer a linear layer belongs
// to: its dotted name up to its first all-digit component, or the whole
// name when it has none.
func layerGroup(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			return strings.Join(parts[:i+1], ".")
		}
	}
	return name
}

type cotoMethod struct{ *lowRank }

// CheckLayers refuses initial_p = 0 (the draw could never switch a group
// on) and, like LoRA, a rank above min(out, in).
func (m cotoMethod) CheckLayers(o Options, layers []LayerShape) error {
	if o.Float("initial_p") <= 0 {
		return optionError("coto", "initial_p", "must be > 0")
	}
	if o.Float("final_p") < o.Float("initial_p") {
		return optionError("coto", "final_p", "below initial_p: the activation probability must not fall")
	}
	return checkRankFits("coto", "rank", o.Int("rank"), layers)
}

func init() {
	opts := append(loraOptions(8, 8, "kaiming", "gaussian"),
		floatOpt("initial_p", 0.1, fptr(0), fptr(1), "activation probability of every adapter group at step 0 (> 0)"),
		floatOpt("final_p", 1, fptr(0), fptr(1), "activation probability reached at the end of stage 1, and kept"),
		floatOpt("stage1_ratio", 0.75, fptr(0), fptr(1), "fraction of the steps over which the probability rises linearly"),
		stringOpt("group", "layer", []string{"layer", "adapter"},
			"what one draw switches: every adapter of a transformer layer (layer) or each adapter alone (adapter)"),
	)
	Register("coto", cotoMethod{&lowRank{
		info: Info{
			Name: "coto", Family: "lora", HasRank: true,
			Paper: Paper{Title: "Come Together, But Not Right Now: A Progressive Strategy to Boost Low-Rank Adaptation",
				Authors: "Zhuang et al.", Year: 2025, ArXiv: "2506.05713"},
			Summary:       "LoRA whose per-layer adapters are switched off at random, with an activation probability rising linearly to 1 over the first 3/4 of training",
			AltOptions:    map[string]any{"rank": 4, "group": "adapter", "initial_p": 0.5, "stage1_ratio": 0.5, "init": "gaussian"},
			Options:       opts,
			ParamsFormula: "Σ r·(in+out)",
		},
		wrap: func(at *loraAttachment, o Options) Attachment {
			ct := &cotoAttachment{loraAttachment: at, p0: o.Float("initial_p"), p1: o.Float("final_p"),
				ratio: o.Float("stage1_ratio"), P: o.Float("initial_p")}
			index := map[string]int{}
			for i, l := range at.layers {
				key := l.Name
				if o.String("group") == "layer" {
					key = layerGroup(l.Name)
				}
				k, ok := index[key]
				if !ok {
					k = len(index)
					index[key] = k
				}
				l.Adapter = &CoTo{LoRA: at.adapters[i], at: ct, group: k}
			}
			ct.groups = len(index)
			ct.Off = make([]bool, ct.groups)
			return ct
		},
		count: loraParams,
	}})
}
