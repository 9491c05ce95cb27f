// Package train is the builtin trainer: it builds a task's base model,
// attaches a PEFT method to the targeted layers, runs the optimiser loop,
// evaluates, and reports metrics and weights.
//
// The loop calls the methods' optional hooks (methods.InputCalibrator,
// BeforeTrainer, OptimizerMaker, StepStarter, Regularizer, BeforeStepper,
// AfterStepper, Variants) at the points documented in package methods; no
// method is a special case here. Continual tasks
// (tasks.Staged) run their stages in order, merging the adapter into the
// base weights between stages when the task asks for it.
//
// Every random draw comes from an nn.RNG stream named by its purpose and
// seeded by the trial seed (StreamInit, StreamData, StreamDropout,
// StreamGradEst, StreamCalib), and every kernel is deterministic whatever the number of
// threads, so one Config gives bit-identical metrics and weights on every
// run. Prepare is the set-up before the first step (streams, targeted
// layers, the attached method), the one package export reproduces for an
// external trainer.
//
// Every evaluation point (each eval_every steps and the end of each stage)
// reports loss and accuracy on the stage's validation set (split "val"),
// its target set and the retain set; the summary's val_loss and val_metric
// are the final model's on the last stage's validation set, for choosing
// hyperparameters without the target (test) set. Under
// trainer.WithStopAfter(ctx, n) Run stops after step n: it evaluates
// there as at an eval_every point, reports the summaries of that point
// and returns a *trainer.StoppedError (see stopped).
//
// A trial diverges, and Run returns a *trainer.DivergedError, when its loss
// or a trainable tensor's gradient becomes NaN or Inf, or when its training
// loss exceeds trainer.DivergenceFactor (1000) times its first step's loss,
// floored at 1 (see trainer.Exploded). The runner applies the same rule to
// every trainer's reports, and also calls a trial whose summary holds a NaN
// or Inf metric diverged.
package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"time"

	"gonum.org/v1/gonum/mat"

	"peftbench/lm"
	"peftbench/methods"
	"peftbench/nn"
	"peftbench/safetensors"
	"peftbench/sweeps"
	"peftbench/tasks"
	"peftbench/trainer"
)

// Config is everything that decides a builtin trial's result.
type Config struct {
	Method        string
	MethodOptions map[string]any // resolved, rank included
	Task          string
	TaskOptions   map[string]any // resolved
	Seed          int64
	// Layers names the targeted linear layers (resolved from the sweep's
	// target patterns); nil targets every linear layer.
	Layers []string

	Steps       int
	Batch       int
	LR          float64
	Optimizer   string // "adamw" or "sgd"
	Momentum    float64
	Beta1       float64
	Beta2       float64
	Eps         float64
	WeightDecay float64
	Schedule    string // "constant", "cosine" or "linear"
	Warmup      int
	GradClip    float64 // global-norm clip; 0 = none
	EvalEvery   int     // steps between evaluations (val, target, retain); 0 = only at the end

	// MitigateIntruders, when set, applies HF PEFT's intruder-dimension
	// mitigation to every targeted layer's merged weight after training
	// and before the final evaluation (see mitigate).
	MitigateIntruders *sweeps.IntruderMitigation
}

// TrialConfig is the Config of a sweep's trial: its method, task, seed and
// optimiser settings, with its target patterns resolved against the task's
// layers (sweeps.Targeted). An error names the trial.
func TrialConfig(t sweeps.Trial) (Config, error) {
	shapes, err := Layers(t.Task, t.TaskOptions)
	if err != nil {
		return Config{}, fmt.Errorf("trial %s: %w", t.ID, err)
	}
	// The whole shape travels: all-linear leaves out a layer marked Output.
	targeted, err := sweeps.Targeted(t.Train.Targets, shapes)
	if err != nil {
		return Config{}, fmt.Errorf("trial %s: %w", t.ID, err)
	}
	names := make([]string, len(targeted))
	for i, l := range targeted {
		names[i] = l.Name
	}
	tc := t.Train
	return Config{
		Method:        t.Method,
		MethodOptions: t.MethodOptions,
		Task:          t.Task,
		TaskOptions:   t.TaskOptions,
		Seed:          t.Seed,
		Layers:        names,
		Steps:         tc.Steps,
		Batch:         tc.Batch,
		LR:            tc.LR,
		Optimizer:     tc.Optimizer,
		Momentum:      tc.Momentum,
		Beta1:         tc.Beta1,
		Beta2:         tc.Beta2,
		Eps:           tc.Eps,
		WeightDecay:   tc.WeightDecay,
		Schedule:      tc.Schedule,
		Warmup:        tc.Warmup,
		GradClip:      tc.GradClip,
		EvalEvery:     tc.EvalEvery,

		MitigateIntruders: t.MitigateIntruders,
	}, nil
}

// The random streams of a trial: every draw comes from Config.RNG of one of
// these names.
const (
	// StreamInit draws the method's initial tensors; a continual task that
	// merges between stages re-attaches on "init/stage<i>" for stage i > 0.
	StreamInit = "init"
	// StreamData draws the training batches, one per step, stage after
	// stage.
	StreamData = "data"
	// StreamDropout draws the adapters' dropout masks.
	StreamDropout = "dropout"
	// StreamGradEst draws the batches of a method's before-training
	// gradient estimate (methods.BeforeTrainer), in the order it asks.
	StreamGradEst = "gradest"
	// StreamCalib draws the batches of a method's input calibration
	// (methods.InputCalibrator), in the order it asks.
	StreamCalib = "calib"
)

// RNG returns the trial's random stream of that name, seeded by its seed.
func (c Config) RNG(stream string) *nn.RNG { return nn.NewRNG(uint64(c.Seed), stream) }

// LogEvery is the cadence of the train loss, gradient norm and learning
// rate reports: the steps i of a stage with i%LogEvery == 0, and its last;
// about 100 points a run.
func (c Config) LogEvery() int { return max(1, c.Steps/100) }

// StepLR is the learning rate of step i of a stage: the schedule and warmup
// applied to LR over Steps steps.
func (c Config) StepLR(i int) float64 {
	return nn.LRSchedule(c.Schedule, c.LR, c.Warmup, c.Steps, i)
}

// Setup is a trial before its first optimiser step, as Run sets it up.
type Setup struct {
	// Model is a clone of the base model: the one that trains.
	Model tasks.Model
	// Layers are the targeted linear layers of Model, in its order; none
	// for a method that tunes norm layers instead (methods.NormTuner: LN
	// tuning), which attaches to Model.Norms() and ignores the targets.
	Layers []*nn.Linear
	// Attachment is the method attached to Layers, its initial tensors
	// drawn from StreamInit and its before-training hook run; nil when
	// prepared without the method.
	Attachment methods.Attachment
	// Options are the method's options, resolved once for the trial; nil
	// when prepared without the method.
	Options methods.Options
	// Data and Dropout are the StreamData and StreamDropout streams, not
	// yet drawn from.
	Data, Dropout *nn.RNG
}

// Prepare sets up trial cfg of task instance inst on its base model as Run
// does before the first step: it clones base, picks cfg.Layers and, when
// method is true, attaches cfg.Method. Package export writes what an
// external trainer needs to follow the builtin one from it.
func Prepare(cfg Config, inst tasks.Instance, base tasks.Model, method bool) (*Setup, error) {
	return prepare(cfg, inst, base, method, nil)
}

// prepare is Prepare, charging the model and a gradient estimate to eff
// (nil: not measured).
func prepare(cfg Config, inst tasks.Instance, base tasks.Model, method bool, eff *efficiency) (*Setup, error) {
	model := base.Clone()
	var layers []*nn.Linear
	var err error
	if !methods.TunesNorms(cfg.Method) {
		if layers, err = pick(model.Linears(), cfg.Layers); err != nil {
			return nil, err
		}
	}
	s := &Setup{Model: model, Layers: layers, Data: cfg.RNG(StreamData), Dropout: cfg.RNG(StreamDropout)}
	if method {
		if s.Options, err = methods.ResolveOptions(cfg.Method, 0, cfg.MethodOptions); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if s.Attachment, err = attach(cfg, s.Options, inst, model, layers, cfg.RNG(StreamInit), eff); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// attach attaches cfg.Method with its resolved options o to layers of
// model (to all of model's norm layers for a methods.NormTuner), its
// initial tensors drawn from rng, and runs its before-training hook, whose
// gradient estimate is charged to eff (nil: not measured).
func attach(cfg Config, o methods.Options, inst tasks.Instance, model tasks.Model, layers []*nn.Linear, rng *nn.RNG, eff *efficiency) (methods.Attachment, error) {
	var att methods.Attachment
	var err error
	if methods.TunesNorms(cfg.Method) {
		att, err = methods.AttachNormsResolved(cfg.Method, model.Norms(), o, rng)
		if err != nil {
			err = fmt.Errorf("task %s: %w", cfg.Task, err)
		}
	} else {
		att, err = methods.AttachResolved(cfg.Method, layers, o, rng)
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if ic, ok := att.(methods.InputCalibrator); ok {
		// Calibration batches come from their own stream, drawn in order as
		// the estimator asks for them.
		calRNG := cfg.RNG(StreamCalib)
		var batches []tasks.Batch
		est := methods.EstimateInputs(func(g *nn.Graph, i int) {
			for len(batches) <= i {
				batches = append(batches, inst.TrainBatch(calRNG, cfg.Batch))
			}
			trainLoss(g, model, batches[i])
		})
		if err := ic.CalibrateInputs(est); err != nil {
			return nil, fmt.Errorf("train: %s calibration: %w", cfg.Method, err)
		}
	}
	if bt, ok := att.(methods.BeforeTrainer); ok {
		// Batches of the gradient estimate come from their own stream, drawn
		// in order as the estimator asks for them.
		estRNG := cfg.RNG(StreamGradEst)
		var batches []tasks.Batch
		est := methods.EstimateGrads(func(g *nn.Graph, i int) *nn.Tensor {
			eff.estimating(g, model, att)
			for len(batches) <= i {
				batches = append(batches, inst.TrainBatch(estRNG, cfg.Batch))
			}
			return trainLoss(g, model, batches[i])
		})
		err := bt.BeforeTraining(est)
		eff.estimated(model, att)
		if err != nil {
			return nil, fmt.Errorf("train: %s before training: %w", cfg.Method, err)
		}
	}
	return att, nil
}

// WeightsFile is the artifact holding the base and tuned weights of every
// targeted layer: tensors "<layer>.base" and "<layer>.tuned" (Out×In).
const WeightsFile = "weights.safetensors"

// Trainer runs builtin trials. The zero value uses the default cache.
type Trainer struct {
	// Cache holds pretrained base models; nil uses tasks.DefaultCacheDir.
	Cache *tasks.Cache
	// NoWeights skips writing WeightsFile.
	NoWeights bool
}

// Layers returns the linear layers of a task's model for resolved options,
// without pretraining, so callers can resolve target patterns.
func Layers(task string, opts map[string]any) ([]tasks.LayerShape, error) {
	return tasks.Layers(task, opts)
}

// Run trains one trial, reporting into rep and writing artifacts into dir;
// it reports the trial's efficiency too (EfficiencySummaries).
func (tr *Trainer) Run(ctx context.Context, cfg Config, dir string, rep trainer.Reporter) error {
	if err := cfg.check(); err != nil {
		return err
	}
	cache := tr.Cache
	if cache == nil {
		d, err := tasks.DefaultCacheDir()
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if cache, err = tasks.NewCache(d); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	inst, err := tasks.New(cfg.Task, cfg.TaskOptions)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	start := time.Now()
	trainer.ReportPhase(rep, trainer.PhaseBase)
	base, err := inst.Base(ctx, cache)
	if err != nil {
		return fmt.Errorf("train: base model of %s: %w", cfg.Task, err)
	}
	trainer.ReportPhase(rep, trainer.PhaseTrain)
	rep.Log(fmt.Sprintf("base model of %s ready in %s", cfg.Task, time.Since(start).Round(time.Millisecond)))
	eff := newEfficiency(base, inst)
	setup, err := prepare(cfg, inst, base, true, eff)
	if err != nil {
		return err
	}
	model, layers := setup.Model, setup.Layers
	r := &run{
		cfg:     cfg,
		rep:     rep,
		inst:    inst,
		base:    base,
		model:   model,
		layers:  layers,
		dataRNG: setup.Data,
		dropRNG: setup.Dropout,
		graph:   &nn.Graph{Meter: eff.Meter()},
		eval:    &nn.Graph{NoGrad: true, Meter: eff.Meter()},
		eff:     eff,
		stopAt:  trainer.StopAfter(ctx),
	}
	if err := r.use(setup.Attachment); err != nil {
		return err
	}
	var formula int64
	if methods.TunesNorms(cfg.Method) {
		formula, err = methods.TrainableNormParamsResolved(cfg.Method, methods.NormShapes(model.Norms()), setup.Options)
	} else {
		formula, err = methods.TrainableParamsResolved(cfg.Method, methods.Shapes(layers), setup.Options)
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if got := int64(nn.CountParams(r.att.Params())); got != formula {
		return fmt.Errorf("train: %s: %d trainable parameters, but its formula says %d", cfg.Method, got, formula)
	}
	rep.Summary("trainable_params", float64(formula))
	rep.Summary("total_params", float64(nn.TotalParams(model)))

	stages := []tasks.Stage{{Name: "target", TrainBatch: inst.TrainBatch, Target: inst.Target(), Validation: inst.Validation()}}
	merge := false
	if st, ok := inst.(tasks.Staged); ok {
		stages, merge = st.Stages(), st.Merge()
	}
	step := 0
	for si, stage := range stages {
		if si > 0 && merge {
			r.mergeAdapter()
			att, err := attach(cfg, setup.Options, inst, model, layers, cfg.RNG(fmt.Sprintf("%s/stage%d", StreamInit, si)), eff)
			if err != nil {
				return err
			}
			if err := r.use(att); err != nil {
				return err
			}
		}
		if err := r.train(ctx, stage, &step); err != nil {
			return err
		}
		if len(stages) > 1 {
			for sj := 0; sj <= si; sj++ {
				loss, acc := tasks.Evaluate(r.eval, model, stages[sj].Target)
				rep.Step(step, "stage", stages[sj].Name+"_loss", loss)
				rep.Step(step, "stage", stages[sj].Name+"_accuracy", acc)
				if si == len(stages)-1 {
					rep.Summary(stages[sj].Name+"_accuracy", acc)
				}
			}
		}
		if r.stopAt == step && si < len(stages)-1 {
			return r.stopped(step)
		}
	}
	rep.Summary("steps", float64(step))

	r.att.SetTraining(nil)
	if v, ok := r.att.(methods.Variants); ok {
		r.variants(v, stages[len(stages)-1])
	}
	if cfg.MitigateIntruders != nil {
		if err := r.mitigate(ctx, *cfg.MitigateIntruders); err != nil {
			return err
		}
	}
	sum := tasks.Summary(r.eval, model, base, inst)
	last := stages[len(stages)-1]
	if len(stages) > 1 {
		// The target of a continual task is its last stage.
		sum["target_loss"], sum["target_accuracy"] = tasks.Evaluate(r.eval, model, last.Target)
		sum["target_loss_before"], sum["target_accuracy_before"] = tasks.Evaluate(r.eval, base, last.Target)
	}
	// The final (mitigated) model, as target_metric.
	sum["val_loss"], sum["val_accuracy"] = tasks.Evaluate(r.eval, model, last.Validation)
	report(rep, sum)
	if !tr.NoWeights {
		if err := r.saveWeights(dir); err != nil {
			return err
		}
	}
	if err := r.savePEFT(dir); err != nil {
		return err
	}
	return r.efficiency(dir) // last: it merges the adapter

}

// variants reports the target and validation metrics of the final stage
// under each of a method's variants (methods.Variants: DyLoRA's truncated
// ranks), then restores the trained adapter.
func (r *run) variants(v methods.Variants, stage tasks.Stage) {
	for _, name := range v.Variants() {
		v.UseVariant(name)
		loss, acc := tasks.Evaluate(r.eval, r.model, stage.Target)
		r.rep.Summary("target_loss_"+name, loss)
		r.rep.Summary("target_metric_"+name, acc)
		loss, acc = tasks.Evaluate(r.eval, r.model, stage.Validation)
		r.rep.Summary("val_loss_"+name, loss)
		r.rep.Summary("val_metric_"+name, acc)
	}
	v.UseVariant("")
}

// resultNames maps tasks.Summary's names to the trials table's columns.
var resultNames = map[string]string{
	"target_accuracy":        "target_metric",
	"target_accuracy_before": "target_metric_before",
	"retain_loss":            "retain_loss_after",
	"retain_accuracy":        "retain_metric_after",
	"retain_accuracy_before": "retain_metric_before",
	"val_accuracy":           "val_metric",
}

func report(rep trainer.Reporter, sum map[string]float64) {
	names := make([]string, 0, len(sum))
	for k := range sum {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		name := k
		if n, ok := resultNames[k]; ok {
			name = n
		}
		rep.Summary(name, sum[k])
	}
}

func (c *Config) check() error {
	switch {
	case c.Steps < 0:
		return fmt.Errorf("train: steps %d < 0", c.Steps)
	case c.Batch <= 0:
		return fmt.Errorf("train: batch %d ≤ 0", c.Batch)
	case c.LR < 0 || math.IsNaN(c.LR):
		return fmt.Errorf("train: lr %g", c.LR)
	}
	switch c.Optimizer {
	case "", "adamw", "sgd":
	default:
		return fmt.Errorf("train: unknown optimizer %q (want adamw or sgd)", c.Optimizer)
	}
	return nil
}

// pick returns the layers named in names, in the model's order; nil names
// pick every layer.
func pick(all []*nn.Linear, names []string) ([]*nn.Linear, error) {
	if names == nil {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []*nn.Linear
	for _, l := range all {
		if want[l.Name] {
			out = append(out, l)
			delete(want, l.Name)
		}
	}
	if len(want) > 0 {
		var missing []string
		for n := range want {
			missing = append(missing, n)
		}
		sort.Strings(missing)
		return nil, fmt.Errorf("train: no layer named %v in the model", missing)
	}
	if len(out) == 0 {
		return nil, errors.New("train: no layer targeted")
	}
	return out, nil
}

// run is the state of one trial's optimiser loop.
type run struct {
	cfg     Config
	rep     trainer.Reporter
	inst    tasks.Instance
	base    tasks.Model
	model   tasks.Model
	layers  []*nn.Linear
	att     methods.Attachment
	params  []nn.ParamRef
	opt     nn.Optimizer
	dataRNG *nn.RNG
	dropRNG *nn.RNG
	graph   *nn.Graph
	eval    *nn.Graph
	// initLoss is the training loss of the trial's first step, the
	// reference of trainer.Exploded.
	initLoss float64
	eff      *efficiency
	// stopAt is trainer.StopAfter of the trial's context: stop after this
	// step (0: run every step); last is the latest evaluation.
	stopAt int
	last   evaluation
}

// use trains the attached method att from here on, with a fresh optimiser
// for its parameters (the method's own, methods.OptimizerMaker, where it
// has one).
func (r *run) use(att methods.Attachment) error {
	r.att = att
	r.params = att.Params()
	nn.ZeroGrads(r.params)
	r.eff.dropOptimizer(r.opt)
	switch r.cfg.Optimizer {
	case "sgd":
		r.opt = &nn.SGD{Momentum: float32(r.cfg.Momentum), WeightDecay: float32(r.cfg.WeightDecay), Meter: r.eff.Meter()}
	default:
		r.opt = &nn.AdamW{
			Beta1:       float32(r.cfg.Beta1),
			Beta2:       float32(r.cfg.Beta2),
			Eps:         float32(r.cfg.Eps),
			WeightDecay: float32(r.cfg.WeightDecay),
			Meter:       r.eff.Meter(),
		}
	}
	if om, ok := att.(methods.OptimizerMaker); ok {
		opt, err := om.Optimizer(r.opt)
		if err != nil {
			return fmt.Errorf("train: %s: %w", r.cfg.Method, err)
		}
		r.opt = opt
	}
	r.eff.sync(r.model, r.att)
	return nil
}

// mergeAdapter folds each layer's adapter into its base weight and removes
// it, and swaps each tuned norm's copy in (nn.Norm.Merge), so the next
// stage starts a fresh adapter on the merged weights.
func (r *run) mergeAdapter() {
	for _, n := range r.model.Norms() {
		n.Merge()
	}
	for _, l := range r.layers {
		if l.Adapter == nil {
			continue
		}
		w := l.Adapter.Merged(l)
		copy(l.Weight.Data, w)
		if l.Bias != nil { // RoAd and IA3 change the bias as well
			copy(l.Bias.Data, methods.MergedBias(l))
		}
		l.Adapter = nil
		l.Weight.SetRequiresGrad(false)
		if l.Bias != nil {
			l.Bias.SetRequiresGrad(false)
		}
	}
}

// mitigate applies HF PEFT's reduce_intruder_dimension to the trained
// model (analysis.MitigateIntruders): each targeted layer's merged weight
// W0 + ΔW becomes W + (λ−1)·Σ σⱼuⱼvⱼᵀ over its intruder directions, and is
// merged into the layer (its adapter removed; a layer without intruders,
// or any layer at λ = 1, keeps its adapter untouched), so the final evaluation,
// the forgetting and the weights artifact (spectra, intruders) are those
// of the mitigated model; the step metrics before it are the plain
// model's. It reports the number of directions rescaled, summed over
// layers, as intruders_mitigated.
func (r *run) mitigate(ctx context.Context, m sweeps.IntruderMitigation) error {
	baseLayers := map[string]*nn.Linear{}
	for _, l := range r.base.Linears() {
		baseLayers[l.Name] = l
	}
	opt := MitigationOptions{Lambda: m.Lambda, Eps: m.Epsilon, K: m.TopK}
	total := 0
	for _, l := range r.layers {
		w0 := widen(l.Out, l.In, baseLayers[l.Name].Weight.Data)
		res, err := MitigateIntruders(ctx, w0, widen(l.Out, l.In, l.Merged()), opt)
		if err != nil {
			return fmt.Errorf("train: mitigate intruders: layer %s: %w", l.Name, err)
		}
		total += len(res.Intruders)
		if len(res.Intruders) == 0 || m.Lambda == 1 {
			// Nothing to change: the layer keeps its adapter (HF PEFT
			// copies an intruder-free adapter unchanged), so λ = 1 gives the
			// plain trial's metrics bit for bit.
			continue
		}
		for i, v := range res.W.RawMatrix().Data {
			l.Weight.Data[i] = float32(v)
		}
		l.Adapter = nil
		l.Weight.SetRequiresGrad(false)
		if l.Bias != nil {
			l.Bias.SetRequiresGrad(false)
		}
	}
	r.rep.Log(fmt.Sprintf("intruder mitigation (lambda %g, threshold_epsilon %g, top_k %d): %d directions rescaled", m.Lambda, m.Epsilon, m.TopK, total))
	r.rep.Summary("intruders_mitigated", float64(total))
	return nil
}

// widen is a row-major float32 matrix as a float64 gonum matrix.
func widen(rows, cols int, v []float32) *mat.Dense {
	d := make([]float64, len(v))
	for i, x := range v {
		d[i] = float64(x)
	}
	return mat.NewDense(rows, cols, d)
}

// train runs cfg.Steps optimiser steps on one stage, advancing *step.
func (r *run) train(ctx context.Context, stage tasks.Stage, step *int) error {
	cfg := r.cfg
	reg, _ := r.att.(methods.Regularizer)
	ss, _ := r.att.(methods.StepStarter)
	bs, _ := r.att.(methods.BeforeStepper)
	as, _ := r.att.(methods.AfterStepper)
	total := cfg.Steps
	first := *step == 0
	for i := 0; i < total; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := *step
		t0 := time.Now()
		b := stage.TrainBatch(r.dataRNG, cfg.Batch)
		held := r.eff.batch(b)
		r.att.SetTraining(r.dropRNG)
		if ss != nil {
			ss.StartStep(i, total)
		}
		g := r.graph
		g.Reset()
		loss := trainLoss(g, r.model, b)
		lossVal := float64(loss.Data[0])
		if reg != nil {
			if t := reg.Regularizer(g); t != nil {
				loss = g.Add(loss, t)
			}
		}
		if math.IsNaN(float64(loss.Data[0])) || math.IsInf(float64(loss.Data[0]), 0) {
			return &trainer.DivergedError{Step: s, Tensor: "loss"}
		}
		if first && i == 0 {
			r.initLoss = lossVal
		} else if trainer.Exploded(r.initLoss, lossVal) {
			return &trainer.DivergedError{Step: s, Reason: fmt.Sprintf("loss %.4g exceeds %d × the initial loss %.4g (floored at 1)", lossVal, trainer.DivergenceFactor, r.initLoss)}
		}
		g.Backward(loss)
		if err := nn.CheckFiniteParams(s, r.params); err != nil {
			var nf *nn.NonFiniteError
			if errors.As(err, &nf) {
				return &trainer.DivergedError{Step: s, Tensor: "gradient of " + nf.Tensor}
			}
			return err
		}
		gnorm := nn.GradNorm(r.params) // the raw norm, before clipping
		if cfg.GradClip > 0 {
			nn.ClipGradNorm(r.params, float32(cfg.GradClip))
		}
		if bs != nil {
			bs.BeforeStep(i, total)
		}
		lr := cfg.StepLR(i)
		r.opt.Step(r.params, float32(lr))
		if as != nil {
			as.AfterStep(i, total)
		}
		nn.ZeroGrads(r.params)
		r.eff.stepDone(t0, b, held)
		*step = s + 1
		if i%cfg.LogEvery() == 0 || i == total-1 {
			r.rep.Step(s, "train", "loss", lossVal)
			r.rep.Step(s, "train", "grad_norm", gnorm)
			r.rep.Step(s, "train", "lr", lr)
		}
		if i == total-1 {
			break // the stage's end evaluates below
		}
		stop := *step == r.stopAt
		if stop || cfg.EvalEvery > 0 && (i+1)%cfg.EvalEvery == 0 {
			r.att.SetTraining(nil)
			r.evaluate(*step, stage)
		}
		if stop {
			return r.stopped(*step)
		}
	}
	r.att.SetTraining(nil)
	r.evaluate(*step, stage)
	return nil
}

// evaluation is the model's loss and accuracy on the sets evaluate scores.
type evaluation struct {
	valLoss, valAcc, targetLoss, targetAcc, retainLoss, retainAcc float64
}

// evaluate reports validation, target and retain loss and accuracy at
// step, and keeps them as r.last.
func (r *run) evaluate(step int, stage tasks.Stage) {
	var e evaluation
	e.valLoss, e.valAcc = tasks.Evaluate(r.eval, r.model, stage.Validation)
	e.targetLoss, e.targetAcc = tasks.Evaluate(r.eval, r.model, stage.Target)
	e.retainLoss, e.retainAcc = tasks.Evaluate(r.eval, r.model, r.inst.Retain())
	r.rep.Step(step, "val", "loss", e.valLoss)
	r.rep.Step(step, "val", "accuracy", e.valAcc)
	r.rep.Step(step, "target", "loss", e.targetLoss)
	r.rep.Step(step, "target", "accuracy", e.targetAcc)
	r.rep.Step(step, "retain", "loss", e.retainLoss)
	r.rep.Step(step, "retain", "accuracy", e.retainAcc)
	r.last = e
}

// stopped ends a trial stopped early after step (trainer.StopAfter), just
// evaluated: it reports the summaries of that point — val_loss,
// val_metric, target_loss, target_metric (the current stage's target),
// retain_loss_after, retain_metric_after and steps — and returns a
// *trainer.StoppedError. The after-training work (the base model's
// metrics, forgetting, intruder mitigation, weights for the spectra) is
// skipped: the trial is a rung of a scheduler, not a result. A stop at or
// after the last step is no stop: the trial runs to its end.
func (r *run) stopped(step int) error {
	e := r.last
	for _, m := range []struct {
		name string
		v    float64
	}{
		{"val_loss", e.valLoss}, {"val_metric", e.valAcc},
		{"target_loss", e.targetLoss}, {"target_metric", e.targetAcc},
		{"retain_loss_after", e.retainLoss}, {"retain_metric_after", e.retainAcc},
		{"steps", float64(step)},
	} {
		r.rep.Summary(m.name, m.v)
	}
	return &trainer.StoppedError{Step: step}
}

// saveWeights writes the base and tuned weights of every targeted layer
// (none for a method that tunes norms only: the file then holds no tensor
// and the trial's spectra are empty).
func (r *run) saveWeights(dir string) error {
	baseLayers := map[string]*nn.Linear{}
	for _, l := range r.base.Linears() {
		baseLayers[l.Name] = l
	}
	var ts []safetensors.Tensor
	for _, l := range r.layers {
		b := baseLayers[l.Name]
		tuned := l.Weight.Data
		if l.Adapter != nil {
			tuned = l.Adapter.Merged(l)
		}
		shape := []int{l.Out, l.In}
		ts = append(ts,
			safetensors.Tensor{Name: l.Name + ".base", Shape: shape, Data: b.Weight.Data},
			safetensors.Tensor{Name: l.Name + ".tuned", Shape: shape, Data: tuned})
	}
	path := filepath.Join(dir, WeightsFile)
	if err := safetensors.WriteFile(path, ts, map[string]string{
		"method": r.cfg.Method, "task": r.cfg.Task,
	}); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	r.rep.Artifact("weights", WeightsFile)
	return nil
}

// PEFTAdapterDir is the artifact folder holding a LoRA-family trial's
// adapter as Hugging Face PEFT saves one (adapter_config.json and
// adapter_model.safetensors with PEFT's key names), written for task models
// that can describe their checkpoint to peft (tasks.AdapterSaver: the lm
// task) when every adapted layer is a plain LoRA layer (methods.LoRA:
// lora, rslora, loraplus, lora-fa, pissa, olora, lora-ga; a residual
// method's frozen initial factors folded in as HF PEFT's save_pretrained
// converts them). peft's PeftModel.from_pretrained loads it onto the
// checkpoint, and `bench spectra --adapter` reads it back.
const PEFTAdapterDir = "peft_adapter"

// savePEFT writes PEFTAdapterDir where the task model and the method allow
// it, and reports it as the "peft_adapter" artifact.
func (r *run) savePEFT(dir string) error {
	s, ok := r.model.(tasks.AdapterSaver)
	if !ok || len(r.layers) == 0 {
		return nil
	}
	var layers []lm.AdapterLayer
	for _, l := range r.layers {
		lo, ok := l.Adapter.(*methods.LoRA)
		if !ok {
			return nil
		}
		a, b, rank := lo.PEFTFactors()
		layers = append(layers, lm.AdapterLayer{Name: l.Name, R: rank, A: a, B: b, Scale: float64(lo.Scale)})
	}
	if err := s.SaveAdapter(filepath.Join(dir, PEFTAdapterDir), layers); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	r.rep.Artifact("peft_adapter", PEFTAdapterDir)
	return nil
}

// trainLoss is the training loss of b: the model's own (tasks.Losser: the
// lm task's chunked cross-entropy, which never forms the logits) when it
// has one, else the cross-entropy of its logits.
func trainLoss(g *nn.Graph, m tasks.Model, b tasks.Batch) *nn.Tensor {
	if l, ok := m.(tasks.Losser); ok {
		return l.Loss(g, b)
	}
	return g.CrossEntropy(m.Logits(g, b), b.Labels)
}
