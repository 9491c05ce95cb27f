package nn

// RefTrainer is one of the engine's reference training setups: a model, a
// fixed synthetic batch and AdamW, stepped in place. The benchmarks, the
// determinism test and `bench perf` time the same setups through it.
type RefTrainer struct {
	Model  Model
	Params []ParamRef // trainable tensors, in a stable order
	Opt    *AdamW
	LR     float32
	Clip   float32 // global-norm clipping threshold; 0 turns it off
	G      *Graph
	// Optional per-step hooks of a method (see methods' trainer contract):
	// Reg adds a term to the loss before Backward; Before runs after
	// clipping and before the optimiser step, After right after it. step
	// counts Step calls from 0; total is HookTotal.
	Reg           func(g *Graph) *Tensor
	Before, After func(step, total int)
	HookTotal     int

	loss func(g *Graph) *Tensor
	step int
}

// LossFunc returns the setup's training loss as a graph function (for a
// method's data-driven initialisation).
func (r *RefTrainer) LossFunc() func(g *Graph) *Tensor { return r.loss }

// Reference model sizes (the engine issue's benchmarks).
var (
	RefMLPSizes          = []int{784, 256, 256, 10}
	RefTransformerConfig = TransformerConfig{Vocab: 64, Dim: 128, Heads: 4, Blocks: 2, Seq: 64, MLPRatio: 4}
)

// NewRefMLP returns the MLP of the given sizes trained with cross-entropy
// on a fixed random batch (inputs N(0,1), random labels). attach is called
// on every linear layer to set its adapter (nil: train nothing but what
// attach-free models expose).
func NewRefMLP(sizes []int, batch int, seed uint64, attach func(*Linear)) *RefTrainer {
	m := NewMLP(sizes, NewRNG(seed, "init"))
	data := NewRNG(seed, "data")
	x := New(batch, sizes[0])
	data.FillNormal(x, 0, 1)
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = data.Intn(sizes[len(sizes)-1])
	}
	r := newRef(m, attach)
	r.loss = func(g *Graph) *Tensor { return g.CrossEntropy(m.Forward(g, x), labels) }
	return r
}

// NewRefTransformer returns the transformer of cfg trained as a language
// model (next-token cross-entropy) on a fixed batch of random sequences of
// length cfg.Seq. Embeddings and norms train only if attach or the caller
// makes them trainable.
func NewRefTransformer(cfg TransformerConfig, batch int, seed uint64, attach func(*Linear)) *RefTrainer {
	m := NewTransformer(cfg, NewRNG(seed, "init"))
	data := NewRNG(seed, "data")
	seq := cfg.Seq
	ids := make([]int, batch*seq)
	labels := make([]int, batch*seq)
	for i := range ids {
		ids[i] = data.Intn(cfg.Vocab)
	}
	for i := range labels {
		if (i+1)%seq == 0 {
			labels[i] = -1
		} else {
			labels[i] = ids[i+1]
		}
	}
	r := newRef(m, attach)
	r.loss = func(g *Graph) *Tensor { return g.CrossEntropy(m.Forward(g, ids, batch, seq), labels) }
	return r
}

func newRef(m Model, attach func(*Linear)) *RefTrainer {
	if attach != nil {
		for _, l := range m.Linears() {
			attach(l)
		}
	}
	o := NewAdamW()
	return &RefTrainer{Model: m, Params: AllParams(m), Opt: o, LR: 1e-3, Clip: 1, G: NewGraph()}
}

// Step runs one training step (forward, backward, clipping, AdamW) and
// returns the loss before the update.
func (r *RefTrainer) Step() float32 {
	r.G.Reset()
	ZeroGrads(r.Params)
	l := r.loss(r.G)
	task := l.Data[0]
	if r.Reg != nil {
		if reg := r.Reg(r.G); reg != nil {
			l = r.G.Add(l, reg)
		}
	}
	r.G.Backward(l)
	if r.Clip > 0 {
		ClipGradNorm(r.Params, r.Clip)
	}
	if r.Before != nil {
		r.Before(r.step, r.HookTotal)
	}
	r.Opt.Step(r.Params, r.LR)
	if r.After != nil {
		r.After(r.step, r.HookTotal)
	}
	r.step++
	return task
}

// Loss evaluates the loss without recording gradients.
func (r *RefTrainer) Loss() float32 {
	g := &Graph{NoGrad: true}
	return r.loss(g).Data[0]
}
