// Package export writes everything an external trainer needs to reproduce a
// builtin trial outside the builtin engine: the base model's weights and
// architecture, the exact training batches the builtin trainer would draw,
// the evaluation sets, the method's initial adapter tensors and the
// optimiser's settings with its learning rate at every step.
//
// The reference PyTorch trainer (trainers/pytorch) reads a data folder
// written by Write, so its metrics can be held against the builtin
// engine's on identical data and initialisation. A folder holds:
//
//	export.json        Manifest: task, method, architecture, layers and their
//	                   adapters, trainable tensors, optimiser, schedule
//	base.safetensors   the base model's state dict (fc1.weight, …, head.bias)
//	init.safetensors   the method's trainable tensors at step 0, plus the
//	                   frozen factors of residual methods
//	data.safetensors   train.x (steps×batch×features), train.labels
//	                   (steps×batch), target.x, target.labels, retain.x,
//	                   retain.labels, val.x, val.labels (the validation
//	                   set); labels are F32 holding integers, −1 for rows
//	                   that count in no loss or metric
//
// The lm task is exported in its own form (writeLM: token rows, the
// checkpoint folder's path, every method; for trainers/pytorch/train_lm.py).
// Otherwise only the MLP tasks (teacher-shift, mnist-*, safety-guard) with one stage
// are exported, and only methods whose adapters are LoRA (with or without
// frozen residual factors), DoRA or full fine-tuning and that use no
// optimiser-loop hook: for the others no external trainer could follow the
// builtin one step by step, and Write says so rather than export a trial
// that cannot agree.
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"peftbench/methods"
	"peftbench/nn"
	"peftbench/safetensors"
	"peftbench/tasks"
	"peftbench/train"
	"peftbench/trainer"
)

// Format is the version of the folder layout Write produces.
const Format = 1

// File names inside an export folder.
const (
	ManifestFile = "export.json"
	BaseFile     = "base.safetensors"
	InitFile     = "init.safetensors"
	DataFile     = "data.safetensors"
)

// Manifest is export.json.
type Manifest struct {
	Format        int            `json:"format"`
	Task          string         `json:"task"`
	TaskOptions   map[string]any `json:"task_options"`
	Method        string         `json:"method"`
	MethodOptions map[string]any `json:"method_options"`
	Seed          int64          `json:"seed"`
	// DataOnly marks an export without the method (see Options).
	DataOnly bool `json:"data_only,omitempty"`
	Arch     Arch `json:"arch"`
	// Layers lists every linear layer of the model in forward order;
	// targeted ones carry their adapter.
	Layers []Layer `json:"layers"`
	// Params lists the trainable tensors in the optimiser's order (which
	// decides the float64 accumulation order of the global gradient norm).
	Params []Param `json:"params"`
	// TrainableParams and TotalParams are the builtin trainer's summary
	// figures for this trial.
	TrainableParams int64 `json:"trainable_params"`
	TotalParams     int64 `json:"total_params"`
	Train           Train `json:"train"`
	// Sizes of the data sets in data.safetensors.
	Features   int `json:"features"`
	Classes    int `json:"classes"`
	TargetRows int `json:"target_rows"`
	RetainRows int `json:"retain_rows"`
	ValRows    int `json:"val_rows"`
	// TargetClasses and RetainClasses, when present, are the logit columns
	// the builtin engine scores that set over (tasks.Batch.Classes:
	// task-incremental evaluation, mnist-split's default protocol "task-il"):
	// a trainer must take the softmax, the argmax and the forgetting KL over
	// these columns alone to report the same metrics. Absent: every column.
	TargetClasses []int `json:"target_classes,omitempty"`
	RetainClasses []int `json:"retain_classes,omitempty"`
	ValClasses    []int `json:"val_classes,omitempty"`
}

// Arch is the model architecture.
type Arch struct {
	Kind  string `json:"kind"`                 // "mlp", or "hf-causal-lm" (see writeLM)
	Sizes []int  `json:"sizes,omitempty"`      // mlp: input, hidden…, classes
	Act   string `json:"act,omitempty"`        // mlp: between layers: "relu", "gelu" (tanh form) or "tanh"
	Model string `json:"model,omitempty"`      // hf-causal-lm: the checkpoint folder, absolute
	Type  string `json:"model_type,omitempty"` // hf-causal-lm: config.json's model_type
	Seq   int    `json:"seq,omitempty"`        // hf-causal-lm: tokens per row
	Vocab int    `json:"vocab,omitempty"`      // hf-causal-lm: the embedding's rows
}

// Layer is one linear layer: y = x·Wᵀ + b, W (Out×In) under Name+".weight".
type Layer struct {
	Name     string   `json:"name"`
	Out      int      `json:"out"`
	In       int      `json:"in"`
	Bias     bool     `json:"bias"`
	Targeted bool     `json:"targeted"`
	Adapter  *Adapter `json:"adapter,omitempty"`
}

// Adapter says how a targeted layer is reparametrised. Kind is
//
//	"lora": y = x·W0ᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ − s·(x·A0ᵀ)·B0ᵀ (A0, B0 only
//	        when Residual)
//	"dora": W' = M ⊙ (W0 + s·B·A)/‖W0 + s·B·A‖_row (norm detached),
//	        y = x·W'ᵀ + b without dropout; with dropout the forward of
//	        methods.DoRA
//	"full": W and b trained
//
// Tensor names (in init.safetensors) are <layer>.lora_A.weight,
// <layer>.lora_B.weight, <layer>.lora_magnitude_vector, <layer>.lora_A0,
// <layer>.lora_B0, and <layer>.weight / <layer>.bias for full.
type Adapter struct {
	Kind     string  `json:"kind"`
	Rank     int     `json:"rank,omitempty"`
	Scale    float64 `json:"scale,omitempty"`
	Dropout  float64 `json:"dropout,omitempty"`
	Residual bool    `json:"residual,omitempty"`
	FrozenA  bool    `json:"frozen_a,omitempty"`
}

// Param is one trainable tensor: its learning rate is the step's rate times
// LRMul, and decoupled weight decay applies when Decay.
type Param struct {
	Name  string  `json:"name"`
	Shape []int   `json:"shape"`
	LRMul float64 `json:"lr_mul"`
	Decay bool    `json:"decay"`
}

// Train holds the optimiser loop's settings. LR[i] is the learning rate of
// step i (schedule and warmup applied).
type Train struct {
	Steps       int       `json:"steps"`
	Batch       int       `json:"batch"`
	Optimizer   string    `json:"optimizer"`
	BaseLR      float64   `json:"base_lr"`
	Momentum    float64   `json:"momentum"`
	Beta1       float64   `json:"beta1"`
	Beta2       float64   `json:"beta2"`
	Eps         float64   `json:"eps"`
	WeightDecay float64   `json:"weight_decay"`
	Schedule    string    `json:"schedule"`
	Warmup      int       `json:"warmup"`
	GradClip    float64   `json:"grad_clip"`
	EvalEvery   int       `json:"eval_every"`
	LogEvery    int       `json:"log_every"`
	LR          []float64 `json:"lr"`
}

// Options configure Write.
type Options struct {
	// DataOnly skips the method: no init.safetensors, no adapters or
	// params in the manifest, only the targeted layers marked. Trainers
	// that bring their own implementation of a method (HF PEFT) need no
	// more, and it works for every method.
	DataOnly bool
}

// Write exports the trial cfg into dir (created if needed), building or
// loading the task's base model through cache.
func Write(ctx context.Context, cfg train.Config, cache *tasks.Cache, dir string, opt Options) (*Manifest, error) {
	if cfg.Batch <= 0 || cfg.Steps < 0 {
		return nil, fmt.Errorf("export: steps %d, batch %d", cfg.Steps, cfg.Batch)
	}
	inst, err := tasks.New(cfg.Task, cfg.TaskOptions)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if _, ok := inst.(tasks.Staged); ok {
		return nil, fmt.Errorf("export: task %s: continual tasks (stages > 1) are not exported", cfg.Task)
	}
	if cfg.Task == LMTask {
		return writeLM(ctx, cfg, inst, dir, opt)
	}
	if t := inst.Target(); len(t) == 0 || t[0].X == nil {
		// Checked before pretraining a base for nothing.
		return nil, fmt.Errorf("export: task %s: only MLP models are exported (transformers are not yet)", cfg.Task)
	}
	base, err := inst.Base(ctx, cache)
	if err != nil {
		return nil, fmt.Errorf("export: base model of %s: %w", cfg.Task, err)
	}
	arch, err := mlpArch(base, inst.Target())
	if err != nil {
		return nil, fmt.Errorf("export: task %s: %w", cfg.Task, err)
	}
	// The builtin trainer's own set-up: the same streams, layers and
	// initial adapter.
	setup, err := train.Prepare(cfg, inst, base, !opt.DataOnly)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	model, targets, att := setup.Model, setup.Layers, setup.Attachment
	switch att.(type) {
	case methods.Regularizer, methods.BeforeStepper, methods.AfterStepper, methods.StepStarter, methods.OptimizerMaker:
		return nil, fmt.Errorf("export: %s: the method acts inside the optimiser loop; external trainers reproduce only plain reparametrisations", cfg.Method)
	}
	m := &Manifest{
		Format: Format, Task: cfg.Task, TaskOptions: cfg.TaskOptions,
		Method: cfg.Method, MethodOptions: cfg.MethodOptions, Seed: cfg.Seed, Arch: arch,
		DataOnly: opt.DataOnly,
		Features: arch.Sizes[0], Classes: arch.Sizes[len(arch.Sizes)-1],
	}
	if att != nil {
		m.TotalParams = int64(nn.TotalParams(model))
	}
	var init []safetensors.Tensor
	for _, l := range model.Linears() {
		ml := Layer{Name: l.Name, Out: l.Out, In: l.In, Bias: l.Bias != nil, Targeted: slices.Contains(targets, l)}
		if l.Adapter != nil {
			ad, ts, err := describe(l)
			if err != nil {
				return nil, fmt.Errorf("export: %s: %w", cfg.Method, err)
			}
			ml.Adapter, init = ad, append(init, ts...)
		}
		m.Layers = append(m.Layers, ml)
	}
	var params []nn.ParamRef
	if att != nil {
		params = att.Params()
	}
	for _, p := range params {
		m.Params = append(m.Params, Param{Name: p.Name, Shape: slices.Clone(p.T.Shape), LRMul: float64(lrMul(p)), Decay: p.Decay})
		m.TrainableParams += int64(p.T.Size())
		if !slices.ContainsFunc(init, func(t safetensors.Tensor) bool { return t.Name == p.Name }) {
			return nil, fmt.Errorf("export: %s: trainable tensor %s is not one an external trainer knows", cfg.Method, p.Name)
		}
	}
	m.Train = trainSettings(cfg)

	data, err := dataTensors(cfg, inst, setup.Data, m)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var sd []safetensors.Tensor
	for name, t := range base.StateDict() {
		sd = append(sd, safetensors.Tensor{Name: name, Shape: slices.Clone(t.Shape), Data: t.Data})
	}
	meta := map[string]string{"task": cfg.Task, "method": cfg.Method, "format": fmt.Sprint(Format)}
	for _, f := range []struct {
		name string
		ts   []safetensors.Tensor
	}{{BaseFile, sd}, {InitFile, init}, {DataFile, data}} {
		if f.name == InitFile && opt.DataOnly {
			continue
		}
		if err := safetensors.WriteFile(filepath.Join(dir, f.name), f.ts, meta); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	buf, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), append(buf, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return m, nil
}

// mlpArch describes base as an MLP and checks the description: an nn.MLP
// made of base's linears with the named activation must give base's logits
// bit for bit on an evaluation batch.
func mlpArch(base tasks.Model, eval []tasks.Batch) (Arch, error) {
	ls := base.Linears()
	if len(ls) == 0 || len(eval) == 0 || eval[0].X == nil {
		return Arch{}, errors.New("only MLP models are exported (transformers are not yet)")
	}
	sizes := []int{ls[0].In}
	for i, l := range ls {
		if l.In != sizes[i] {
			return Arch{}, fmt.Errorf("layer %s takes %d features after a layer giving %d: not an MLP", l.Name, l.In, sizes[i])
		}
		sizes = append(sizes, l.Out)
	}
	g := &nn.Graph{NoGrad: true}
	b := eval[0]
	want := slices.Clone(base.Logits(g, b).Data)
	for _, act := range []string{"relu", "gelu", "tanh"} {
		g.Reset()
		got := (&nn.MLP{Layers: ls, Act: act}).Forward(g, b.X)
		if slices.Equal(got.Data, want) {
			return Arch{Kind: "mlp", Sizes: sizes, Act: act}, nil
		}
	}
	return Arch{}, errors.New("the model is not a plain MLP of its linear layers")
}

// describe returns a targeted layer's adapter and its tensors at step 0.
func describe(l *nn.Linear) (*Adapter, []safetensors.Tensor, error) {
	tensor := func(t *nn.Tensor, name string) safetensors.Tensor {
		return safetensors.Tensor{Name: name, Shape: slices.Clone(t.Shape), Data: slices.Clone(t.Data)}
	}
	lora := func(a *methods.LoRA) (*Adapter, []safetensors.Tensor) {
		ad := &Adapter{Kind: "lora", Rank: a.Rank, Scale: float64(a.Scale), Dropout: float64(a.Dropout),
			Residual: a.A0 != nil, FrozenA: !a.A.RequiresGrad()}
		ts := []safetensors.Tensor{tensor(a.A, a.A.Name), tensor(a.B, a.B.Name)}
		if a.A0 != nil {
			ts = append(ts, tensor(a.A0, a.A0.Name), tensor(a.B0, a.B0.Name))
		}
		return ad, ts
	}
	switch a := l.Adapter.(type) {
	case *methods.LoRA:
		ad, ts := lora(a)
		return ad, ts, nil
	case *methods.DoRA:
		if a.A0 != nil {
			return nil, nil, fmt.Errorf("layer %s: DoRA with residual factors is not exported", l.Name)
		}
		ad, ts := lora(a.LoRA)
		ad.Kind = "dora"
		return ad, append(ts, tensor(a.M, a.M.Name)), nil
	case *methods.Full:
		ts := []safetensors.Tensor{tensor(a.W, a.W.Name)}
		if a.B != nil {
			ts = append(ts, tensor(a.B, a.B.Name))
		}
		return &Adapter{Kind: "full"}, ts, nil
	}
	return nil, nil, fmt.Errorf("layer %s: adapter %T has no external form (lora, dora and full do)", l.Name, l.Adapter)
}

func lrMul(p nn.ParamRef) float32 {
	if p.LRMul == 0 {
		return 1
	}
	return p.LRMul
}

// trainSettings resolves the optimiser settings, the per-step learning
// rates and the logging cadence exactly as the builtin trainer uses them
// (float32 where it does).
func trainSettings(cfg train.Config) Train {
	t := Train{
		Steps: cfg.Steps, Batch: cfg.Batch, Optimizer: cfg.Optimizer, BaseLR: cfg.LR,
		Momentum: f32(cfg.Momentum), Beta1: f32(cfg.Beta1), Beta2: f32(cfg.Beta2), Eps: f32(cfg.Eps),
		WeightDecay: f32(cfg.WeightDecay), Schedule: cfg.Schedule, Warmup: cfg.Warmup,
		GradClip: f32(cfg.GradClip), EvalEvery: cfg.EvalEvery, LogEvery: cfg.LogEvery(),
	}
	if t.Optimizer == "" {
		t.Optimizer = "adamw"
	}
	for i := range cfg.Steps {
		t.LR = append(t.LR, f32(cfg.StepLR(i)))
	}
	return t
}

// f32 rounds v to float32, as the builtin optimiser sees it.
func f32(v float64) float64 { return float64(float32(v)) }

// dataTensors draws the training batches from rng, the trial's
// train.StreamData stream, as the builtin trainer does, and flattens the
// evaluation sets.
func dataTensors(cfg train.Config, inst tasks.Instance, rng *nn.RNG, m *Manifest) ([]safetensors.Tensor, error) {
	dim := m.Features
	x := make([]float32, 0, cfg.Steps*cfg.Batch*dim)
	labels := make([]float32, 0, cfg.Steps*cfg.Batch)
	for range cfg.Steps {
		b := inst.TrainBatch(rng, cfg.Batch)
		if b.X == nil || b.N != cfg.Batch || b.X.Cols() != dim || len(b.Labels) != cfg.Batch {
			return nil, fmt.Errorf("export: %s: a training batch is not %d×%d features", cfg.Task, cfg.Batch, dim)
		}
		x = append(x, b.X.Data...)
		labels = appendLabels(labels, b.Labels)
	}
	ts := []safetensors.Tensor{
		{Name: "train.x", Shape: []int{cfg.Steps, cfg.Batch, dim}, Data: x},
		{Name: "train.labels", Shape: []int{cfg.Steps, cfg.Batch}, Data: labels},
	}
	for _, set := range []struct {
		name    string
		bs      []tasks.Batch
		rows    *int
		classes *[]int
	}{
		{"target", inst.Target(), &m.TargetRows, &m.TargetClasses},
		{"retain", inst.Retain(), &m.RetainRows, &m.RetainClasses},
		{"val", inst.Validation(), &m.ValRows, &m.ValClasses},
	} {
		var sx, sl []float32
		for i, b := range set.bs {
			if b.X == nil || b.X.Cols() != dim {
				return nil, fmt.Errorf("export: %s: %s set is not MLP data", cfg.Task, set.name)
			}
			if i == 0 {
				*set.classes = b.Classes
			} else if !slices.Equal(b.Classes, *set.classes) {
				return nil, fmt.Errorf("export: %s: %s set scores its batches over different classes", cfg.Task, set.name)
			}
			sx = append(sx, b.X.Data...)
			sl = appendLabels(sl, b.Labels)
		}
		*set.rows = len(sl)
		ts = append(ts,
			safetensors.Tensor{Name: set.name + ".x", Shape: []int{len(sl), dim}, Data: sx},
			safetensors.Tensor{Name: set.name + ".labels", Shape: []int{len(sl)}, Data: sl})
	}
	return ts, nil
}

func appendLabels(dst []float32, labels []int) []float32 {
	for _, l := range labels {
		if l >= 1<<24 || l < -1 {
			panic(fmt.Sprintf("export: label %d does not fit float32 exactly", l))
		}
		dst = append(dst, float32(l))
	}
	return dst
}

// FromTrial exports the trial of a protocol trial file (trainer.TrialFile)
// into dir, with the train.Config the builtin trainer would run
// (train.TrialConfig): the same data, initialisation and optimiser, so the
// two can be compared.
func FromTrial(ctx context.Context, trialFile string, cache *tasks.Cache, dir string, opt Options) (*Manifest, error) {
	tf, err := trainer.ReadTrialFile(trialFile)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	cfg, err := train.TrialConfig(tf.Trial)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return Write(ctx, cfg, cache, dir, opt)
}
