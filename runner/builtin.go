package runner

import (
	"context"
	"errors"
	"fmt"

	"peftbench/sweeps"
	"peftbench/train"
)

// Builtin drives the builtin engine (package train) as a Trainer.
type Builtin struct {
	T *train.Trainer
}

// Run converts the trial into a train.Config, resolving its target patterns
// against the task's layers, and trains it.
func (b Builtin) Run(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
	cfg, err := BuiltinConfig(t)
	if err != nil {
		return err
	}
	tr := b.T
	if tr == nil {
		tr = &train.Trainer{}
	}
	err = tr.Run(ctx, cfg, dir, r)
	var d *train.DivergedError
	if errors.As(err, &d) {
		return &DivergedError{Step: d.Step, Tensor: d.Tensor, Reason: d.Reason}
	}
	return err
}

// BuiltinConfig is the train.Config of a trial.
func BuiltinConfig(t sweeps.Trial) (train.Config, error) {
	shapes, err := train.Layers(t.Task, t.TaskOptions)
	if err != nil {
		return train.Config{}, fmt.Errorf("runner: trial %s: %w", t.ID, err)
	}
	layers := make([]sweeps.Layer, len(shapes))
	for i, s := range shapes {
		layers[i] = sweeps.Layer{Name: s.Name, Out: s.Out, In: s.In}
	}
	targeted, err := sweeps.Targeted(t.Train.Targets, layers)
	if err != nil {
		return train.Config{}, fmt.Errorf("runner: trial %s: %w", t.ID, err)
	}
	names := make([]string, len(targeted))
	for i, l := range targeted {
		names[i] = l.Name
	}
	tc := t.Train
	return train.Config{
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
	}, nil
}
