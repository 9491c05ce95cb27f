package methods

import (
	"fmt"
	"regexp"

	"peftbench/nn"
)

// lisa is LISA, layerwise importance sampled AdamW (Pan et al. 2024), as
// LMFlow's DynamicLayerActivationCallback runs it: full-parameter
// fine-tuning in which, at the start of every step t with
// t mod lisa_interval_steps = 0 (step 0 included), γ = lisa_activated_layers
// of the model's layers are drawn uniformly without replacement
// (np.random.choice(range(n), γ, replace=False) there) and only they, plus
// the parts outside the layer stack, train until the next draw; the others
// are frozen (requires_grad False: no gradient, skipped by AdamW, which
// counts each parameter's steps by itself).
//
// Layers here are the targeted linears grouped by the block their name
// places them in: the name up to its first run of digits ("blocks.3",
// "model.layers.3", "transformer.h.3", "fc1"). Each group is one of LISA's
// layers, trained whole (weight and bias of each of its linears, as
// method full). A targeted linear whose name has no digit ("head",
// "lm_head") is outside the layer stack and always trains: that is LISA's
// always-on language-model head. LISA's always-on embeddings (and norms)
// are not linear layers; no method here trains them, so neither does LISA.
// With γ at least the number of layers every layer trains (LMFlow's draw
// would raise). The draw for interval k comes from the method's random
// stream: a seed drawn at Attach and the interval's index, so it does not
// depend on anything else the run does.
//
// The switch happens in StartStep, before the forward pass, as LMFlow's
// on_step_begin: a frozen layer's weight gets no gradient, so it counts in
// neither the gradient norm nor the clip, exactly as a parameter with
// grad None in torch. AfterStep gives the frozen tensors their (cleared)
// gradient buffers back, so between steps every listed parameter has one.
type lisa struct {
	layers  []*nn.Linear
	fulls   []*Full
	params  []nn.ParamRef
	groups  [][]int // indices into layers, per LISA layer, in order of appearance
	always  []int   // targeted linears outside the layer stack
	names   []string
	gamma   int
	every   int
	seed    uint64
	active  []bool // per group, for the current interval
	stashed map[*nn.Tensor][]float32
}

// lisaBlock is the layer a linear's name places it in: the name up to its
// first run of digits.
var lisaBlock = regexp.MustCompile(`^\D*\d+`)

func (at *lisa) Layers() []*nn.Linear  { return at.layers }
func (at *lisa) Params() []nn.ParamRef { return at.params }
func (at *lisa) SetTraining(*nn.RNG)   {}

// Groups returns LISA's layers (their block names) and, per layer, the
// targeted linears in it.
func (at *lisa) Groups() (names []string, members [][]*nn.Linear) {
	for gi, g := range at.groups {
		names = append(names, at.names[gi])
		var ls []*nn.Linear
		for _, i := range g {
			ls = append(ls, at.layers[i])
		}
		members = append(members, ls)
	}
	return names, members
}

// ActiveAt returns, per LISA layer, whether it trains in interval k (steps
// k·every … (k+1)·every − 1).
func (at *lisa) ActiveAt(k int) []bool {
	n := len(at.groups)
	act := make([]bool, n)
	if at.gamma >= n {
		for i := range act {
			act[i] = true
		}
		return act
	}
	perm := nn.NewRNG(at.seed, fmt.Sprintf("lisa interval %d", k)).Perm(n)
	for _, i := range perm[:at.gamma] {
		act[i] = true
	}
	return act
}

// StartStep draws the interval's layers when step is a multiple of the
// interval and freezes the others for this step.
func (at *lisa) StartStep(step, total int) {
	if at.active == nil || step%at.every == 0 {
		at.active = at.ActiveAt(step / at.every)
	}
	for gi, g := range at.groups {
		if at.active[gi] {
			continue
		}
		for _, i := range g {
			for _, p := range at.fulls[i].Params() {
				if p.T.Grad != nil {
					at.stashed[p.T] = p.T.Grad
					p.T.Grad = nil
				}
			}
		}
	}
}

// AfterStep gives the frozen tensors their gradient buffers back, cleared.
func (at *lisa) AfterStep(step, total int) {
	for t, g := range at.stashed {
		clear(g)
		t.Grad = g
		delete(at.stashed, t)
	}
}

type lisaMethod struct{}

func (lisaMethod) Info() Info {
	return Info{
		Name: "lisa", Family: "full",
		Paper: Paper{Title: "LISA: Layerwise Importance Sampling for Memory-Efficient Large Language Model Fine-Tuning",
			Authors: "Pan et al.", Year: 2024, ArXiv: "2403.17919"},
		Summary: "full fine-tuning of the targeted layers in which every lisa_interval_steps steps only lisa_activated_layers " +
			"randomly drawn blocks train (LMFlow's DynamicLayerActivationCallback); linears outside the blocks (the head) always train",
		// LMFlow's FinetunerArguments: lisa_activated_layers = 2,
		// lisa_interval_steps = 20.
		Options: []Option{
			intOpt("lisa_activated_layers", 2, 1, "number γ of layers (blocks) trained at once"),
			intOpt("lisa_interval_steps", 20, 1, "steps between draws of the trained layers"),
		},
		AltOptions:    map[string]any{"lisa_activated_layers": 1, "lisa_interval_steps": 2},
		ParamsFormula: "Σ out·in (+ out with a bias): every targeted layer, of which γ blocks train at a time",
	}
}

// CheckLayers accepts any shapes.
func (lisaMethod) CheckLayers(Options, []LayerShape) error { return nil }

func (lisaMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	at := &lisa{layers: layers, gamma: o.Int("lisa_activated_layers"), every: o.Int("lisa_interval_steps"),
		seed: rng.Uint64(), stashed: map[*nn.Tensor][]float32{}}
	if at.gamma < 1 || at.every < 1 {
		return nil, fmt.Errorf("methods: lisa: lisa_activated_layers %d and lisa_interval_steps %d, want ≥ 1", at.gamma, at.every)
	}
	index := map[string]int{}
	for i, l := range layers {
		f := NewFull(l)
		l.Adapter = f
		at.fulls = append(at.fulls, f)
		at.params = append(at.params, f.Params()...)
		block := lisaBlock.FindString(l.Name)
		if block == "" {
			at.always = append(at.always, i)
			continue
		}
		g, ok := index[block]
		if !ok {
			g = len(at.groups)
			index[block] = g
			at.groups = append(at.groups, nil)
			at.names = append(at.names, block)
		}
		at.groups[g] = append(at.groups[g], i)
	}
	return at, nil
}

func (lisaMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	return fullMethod{}.TrainableParams(layers, o)
}

func init() { Register("lisa", lisaMethod{}) }
