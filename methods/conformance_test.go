package methods

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"peftbench/nn"
)

// refModel is one of nn's reference models with a fixed batch: out gives
// the model's outputs, loss the training loss.
type refModel struct {
	name    string
	model   nn.Model
	targets []*nn.Linear
	out     func(g *nn.Graph) *nn.Tensor
	loss    func(g *nn.Graph) *nn.Tensor
	// alt replaces a method's Info.AltOptions on this model where those
	// name the reference transformer's layers (ln-tuning's norms).
	alt map[string]map[string]any
	// refuse lists the "method/set" runs (set: defaults or alt) that the
	// method must refuse on this model, each with a fragment of the error
	// it must give (why it cannot apply).
	refuse map[string]string
}

// refModels builds the reference MLP (784-256-256-10, fc1 and fc2
// targeted) and the reference transformer (every linear targeted) with
// small fixed batches, then a tiny checkpoint of each LM family
// (lmRefModels: attention and MLP linears targeted by their checkpoint
// names, loss lm.Model.Loss). Callers index the first two.
func refModels(seed uint64) []refModel {
	mlp := nn.NewMLP(nn.RefMLPSizes, nn.NewRNG(seed, "init"))
	data := nn.NewRNG(seed, "data")
	x := nn.New(16, nn.RefMLPSizes[0])
	data.FillNormal(x, 0, 1)
	labels := make([]int, 16)
	for i := range labels {
		labels[i] = data.Intn(nn.RefMLPSizes[len(nn.RefMLPSizes)-1])
	}
	mlpOut := func(g *nn.Graph) *nn.Tensor { return mlp.Forward(g, x) }

	cfg := nn.RefTransformerConfig
	tf := nn.NewTransformer(cfg, nn.NewRNG(seed, "init"))
	const batch, seq = 2, 16
	ids := make([]int, batch*seq)
	next := make([]int, batch*seq)
	for i := range ids {
		ids[i] = data.Intn(cfg.Vocab)
	}
	for i := range next {
		next[i] = -1
		if (i+1)%seq != 0 {
			next[i] = ids[i+1]
		}
	}
	tfOut := func(g *nn.Graph) *nn.Tensor { return tf.Forward(g, ids, batch, seq) }
	return append([]refModel{
		{name: "mlp", model: mlp, targets: mlp.Layers[:2], out: mlpOut, loss: func(g *nn.Graph) *nn.Tensor { return g.CrossEntropy(mlpOut(g), labels) }},
		{name: "transformer", model: tf, targets: tf.Linears(), out: tfOut, loss: func(g *nn.Graph) *nn.Tensor { return g.CrossEntropy(tfOut(g), next) }},
	}, lmRefModels(seed)...)
}

func eval(f func(g *nn.Graph) *nn.Tensor) []float32 {
	g := &nn.Graph{NoGrad: true}
	return append([]float32(nil), f(g).Data...)
}

// relDiff is max|a−b| / max(1, max|b|).
func relDiff(a, b []float32) float64 {
	var d, m float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		m = max(m, math.Abs(float64(b[i])))
	}
	return d / max(1, m)
}

// trainer runs the optimiser loop the way package train does, calling
// every hook a method implements.
type trainer struct {
	att     Attachment
	params  []nn.ParamRef
	opt     *nn.AdamW    // the trial's AdamW: tests set its weight decay
	stepper nn.Optimizer // what steps: opt, or the method's (OptimizerMaker)
	loss    func(g *nn.Graph) *nn.Tensor
	g       *nn.Graph
}

// newTrainer calls the method's before-training hooks as package train
// does (InputCalibrator and BeforeTrainer on the one batch of loss,
// OptimizerMaker on an AdamW without weight decay).
func newTrainer(tb testing.TB, att Attachment, loss func(g *nn.Graph) *nn.Tensor) *trainer {
	if c, ok := att.(InputCalibrator); ok {
		if err := c.CalibrateInputs(EstimateInputs(func(g *nn.Graph, _ int) { loss(g) })); err != nil {
			tb.Fatal(err)
		}
	}
	if b, ok := att.(BeforeTrainer); ok {
		if err := b.BeforeTraining(EstimateGrads(func(g *nn.Graph, _ int) *nn.Tensor { return loss(g) })); err != nil {
			tb.Fatal(err)
		}
	}
	opt := nn.NewAdamW()
	opt.WeightDecay = 0
	tr := &trainer{att: att, params: att.Params(), opt: opt, stepper: opt, loss: loss, g: nn.NewGraph()}
	if m, ok := att.(OptimizerMaker); ok {
		o, err := m.Optimizer(opt)
		if err != nil {
			tb.Fatal(err)
		}
		tr.stepper = o
	}
	return tr
}

// step runs one step and returns the task loss before the update.
func (tr *trainer) step(step, total int, lr float32) float32 { return tr.run(step, total, lr, 1) }

// stepNoClip is step without gradient clipping.
func (tr *trainer) stepNoClip(step, total int, lr float32) float32 { return tr.run(step, total, lr, 0) }

func (tr *trainer) run(step, total int, lr, clip float32) float32 {
	l, _ := tr.runNorm(step, total, lr, clip)
	return l
}

// runNorm is run that also returns the raw gradient norm, before clipping.
func (tr *trainer) runNorm(step, total int, lr, clip float32) (float32, float64) {
	if h, ok := tr.att.(StepStarter); ok {
		h.StartStep(step, total)
	}
	tr.g.Reset()
	nn.ZeroGrads(tr.params)
	l := tr.loss(tr.g)
	task := l.Data[0]
	if r, ok := tr.att.(Regularizer); ok {
		if reg := r.Regularizer(tr.g); reg != nil {
			l = tr.g.Add(l, reg)
		}
	}
	tr.g.Backward(l)
	norm := nn.GradNorm(tr.params)
	if clip > 0 {
		nn.ClipGradNorm(tr.params, clip)
	}
	if h, ok := tr.att.(BeforeStepper); ok {
		h.BeforeStep(step, total)
	}
	tr.stepper.Step(tr.params, lr)
	if h, ok := tr.att.(AfterStepper); ok {
		h.AfterStep(step, total)
	}
	return task, norm
}

// TestConformance runs every registered method on the reference MLP and
// transformer and on a tiny checkpoint of each LM family (lmRefModels), at
// its defaults and at the second option set it declares (Info.AltOptions,
// or the model's own alt for options that name layers), and checks (a) the declared step-0 behaviour: the
// adapted model starts at the base model, or, for a method whose default
// init is not a no-op (Info.RandomInit), it does not, and does under its
// IdentityOptions; (b) the trainable-parameter count matches the method's
// formula; (c) a few steps on a fixed batch reduce the loss; (d) the
// merged weights give the adapter's outputs and (e) the adapter's gradients
// match finite differences. A run a model lists in refuse must instead be
// refused, with the error it names.
func TestConformance(t *testing.T) {
	var models []string
	for _, m := range refModels(1) {
		models = append(models, m.name)
	}
	if raceEnabled {
		models = models[:2] // the MLP and the transformer (race_test.go)
	}
	for _, name := range Names() {
		method, _ := Lookup(name)
		info := method.Info()
		sets := []struct {
			name string
			opts map[string]any
		}{{"defaults", nil}, {"alt", info.AltOptions}}
		for _, set := range sets {
			for mi, model := range models {
				t.Run(name+"/"+set.name+"/"+model, func(t *testing.T) {
					m := refModels(1)[mi]
					opts := set.opts
					if o, ok := m.alt[name]; ok && set.name == "alt" {
						opts = o
					}
					conform(t, name, opts, m, m.refuse[name+"/"+set.name])
				})
			}
		}
	}
}

// conform runs the checks of one method and option set on one model; with
// refuse set, the method must instead refuse the model's layers with an
// error containing refuse.
func conform(t *testing.T, name string, opts map[string]any, m refModel, refuse string) {
	method, _ := Lookup(name)
	info := method.Info()
	base := eval(m.out)
	o, err := ResolveOptions(name, 0, opts)
	if err != nil {
		t.Fatal(err)
	}
	if TunesNorms(name) && len(m.model.Norms()) == 0 {
		t.Skipf("%s tunes norm layers and the reference %s has none", name, m.name)
	}
	err = CheckLayers(name, o, Shapes(m.targets))
	if TunesNorms(name) {
		_, err = attachConform(name, m, o, nn.NewRNG(7, "method"))
		for _, n := range m.model.Norms() {
			n.Tuned = nil
		}
	}
	switch {
	case refuse != "" && err == nil:
		t.Fatalf("want a refusal (%q), the method accepts the layers", refuse)
	case refuse != "" && !strings.Contains(err.Error(), refuse):
		t.Fatalf("refusal %q, want one containing %q", err, refuse)
	case refuse != "":
		if _, err := attachConform(name, m, o, nn.NewRNG(7, "method")); err == nil {
			t.Fatalf("CheckLayers refuses (%q), attaching does not", refuse)
		}
		return
	case err != nil:
		t.Fatal(err)
	}
	if info.RandomInit != "" {
		// (a) under IdentityOptions the method starts at the base model.
		io := maps.Clone(opts)
		if io == nil {
			io = map[string]any{}
		}
		maps.Copy(io, info.IdentityOptions)
		ro, err := ResolveOptions(name, 0, io)
		if err != nil {
			t.Fatal(err)
		}
		att, err := attachConform(name, m, ro, nn.NewRNG(7, "method"))
		if err != nil {
			t.Fatal(err)
		}
		if d := relDiff(eval(m.out), base); d > 1e-6 {
			t.Errorf("(a) with %v the step-0 outputs differ from the base model by %.3g", info.IdentityOptions, d)
		}
		detach(att)
	}
	att, err := attachConform(name, m, o, nn.NewRNG(7, "method"))
	if err != nil {
		t.Fatal(err)
	}
	tr := newTrainer(t, att, m.loss)

	// (a) step 0 is the base model, or declared not to be.
	d0 := relDiff(eval(m.out), base)
	if info.RandomInit != "" {
		if d0 <= 1e-6 {
			t.Errorf("(a) declares a random init (%s) but starts %.3g from the base model", info.RandomInit, d0)
		}
	} else if tol := max(1e-6, info.InitDeviation); d0 > tol {
		t.Errorf("(a) step-0 outputs differ from the base model by %.3g (tolerance %g)", d0, tol)
	}

	// (b) formula = actual trainable elements, all with gradients.
	got := int64(0)
	for _, p := range tr.params {
		if !p.T.RequiresGrad() {
			t.Errorf("(b) %s listed as trainable but has no gradient", p.Name)
		}
		got += int64(p.T.Size())
	}
	want := method.TrainableParams(Shapes(m.targets), o)
	if nt, ok := method.(NormTuner); ok {
		want = nt.TrainableNormParams(NormShapes(m.model.Norms()), o)
	}
	if got != want {
		t.Errorf("(b) %d trainable elements, formula %q gives %d", got, info.ParamsFormula, want)
	}

	// (c) a few steps reduce the loss; (e) gradients against finite
	// differences after two of them, away from the initialisation (where
	// e.g. LoRA's A has no gradient).
	if first, last := trainChecked(t, tr, m, info); !(last < first) {
		t.Errorf("(c) loss %v after %d steps, %v before", last, conformSteps, first)
	}

	// (d) merged weights reproduce the adapter's outputs.
	if d := mergeGap(m); d > 1e-5 {
		t.Errorf("(d) merged weights give outputs %.3g away from the adapter's", d)
	}
}

// conformSteps is how many steps trainChecked takes.
const conformSteps = 6

// trainChecked takes conformSteps steps at the method's recommended LR
// (5e-3 by default), checks the gradients against finite differences
// after two of them, and returns the loss before the first step and after
// the last.
func trainChecked(t *testing.T, tr *trainer, m refModel, info Info) (first, last float32) {
	t.Helper()
	lr := float32(5e-3)
	if info.LR > 0 {
		lr = float32(info.LR)
	}
	first = tr.step(0, conformSteps, lr)
	for s := 1; s < conformSteps; s++ {
		if s == 2 {
			checkGrads(t, tr.params, m.loss, m.targets)
		}
		tr.step(s, conformSteps, lr)
	}
	return first, eval(m.loss)[0]
}

// mergeGap returns how far the merged model is from the adapted one
// (relDiff of their outputs): each targeted layer's adapter replaced by
// its merged weight and bias (RoAd and IA3 fold themselves into the bias
// too), each tuned norm by its copy (LN tuning), then everything restored.
func mergeGap(m refModel) float64 {
	adapted := eval(m.out)
	type saved struct {
		w, b []float32
		a    nn.Adapter
	}
	var ls []saved
	for _, l := range m.targets {
		sv := saved{w: l.Weight.Data, a: l.Adapter}
		l.Weight.Data = l.Merged()
		if l.Bias != nil {
			sv.b = l.Bias.Data
			l.Bias.Data = MergedBias(l)
		}
		l.Adapter = nil
		ls = append(ls, sv)
	}
	var norms []nn.Norm
	for _, n := range m.model.Norms() {
		norms = append(norms, *n)
		if n.Tuned != nil {
			*n = nn.Norm{Name: n.Name, Weight: n.Tuned.Weight, Bias: n.Tuned.Bias, Eps: n.Eps}
		}
	}
	merged := eval(m.out)
	for i, l := range m.targets {
		l.Weight.Data, l.Adapter = ls[i].w, ls[i].a
		if l.Bias != nil {
			l.Bias.Data = ls[i].b
		}
	}
	for i, n := range m.model.Norms() {
		*n = norms[i]
	}
	return relDiff(merged, adapted)
}

// attachConform attaches method name to the reference model's targeted linear
// layers, or to its norm layers for a NormTuner.
func attachConform(name string, m refModel, o Options, rng *nn.RNG) (Attachment, error) {
	if TunesNorms(name) {
		return AttachNormsResolved(name, m.model.Norms(), o, rng)
	}
	return AttachResolved(name, m.targets, o, rng)
}

// detach removes an attachment's adapters so the layers can take another.
func detach(att Attachment) {
	for _, l := range att.Layers() {
		l.Adapter = nil
	}
}

// checkGrads compares backward's gradient of loss with central finite
// differences at the three largest-gradient elements of every trainable
// tensor. DoRA's row norm is held fixed: it is a constant in backward.
func checkGrads(t *testing.T, params []nn.ParamRef, loss func(g *nn.Graph) *nn.Tensor, layers []*nn.Linear) {
	t.Helper()
	for _, l := range layers {
		if d, ok := l.Adapter.(*DoRA); ok {
			n := make([]float32, l.Out)
			d.rowNorms(l, n)
			d.fixed = n
			defer func() { d.fixed = nil }()
		}
	}
	g := nn.NewGraph()
	nn.ZeroGrads(params)
	g.Backward(loss(g))
	for _, p := range params {
		idx := make([]int, p.T.Size())
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int {
			return cmp.Compare(math.Abs(float64(p.T.Grad[b])), math.Abs(float64(p.T.Grad[a])))
		})
		l0 := float64(eval(loss)[0])
		// float32 rounding of the loss, amplified by 1/h.
		noise := 4 * 1.2e-7 * max(1, math.Abs(l0))
		for _, i := range idx[:min(3, len(idx))] {
			an := float64(p.T.Grad[i])
			v := p.T.Data[i]
			h := float32(2e-3) * max(1, float32(math.Abs(float64(v))))
			p.T.Data[i] = v + h
			up := float64(eval(loss)[0])
			p.T.Data[i] = v - h
			down := float64(eval(loss)[0])
			p.T.Data[i] = v
			hh := float64(h)
			near := func(fd float64) bool {
				return math.Abs(fd-an) <= 0.05*max(math.Abs(an), math.Abs(fd))+noise/hh
			}
			// At a ReLU kink backward gives one of the one-sided derivatives.
			fd := (up - down) / (2 * hh)
			if !near(fd) && !near((up-l0)/hh) && !near((l0-down)/hh) {
				t.Errorf("(e) %s[%d]: backward %.6g, finite difference %.6g", p.Name, i, an, fd)
			}
		}
	}
}
