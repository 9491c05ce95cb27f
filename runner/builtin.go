package runner

import (
	"context"
	"errors"
	"fmt"

	"peftbench/sweeps"
	"peftbench/train"
	"peftbench/trainer"
)

// Builtin drives the builtin engine (package train) as a Trainer. It is
// the only part of the runner that knows package train.
type Builtin struct {
	T *train.Trainer
}

// Run converts the trial into a train.Config (train.TrialConfig, which
// resolves its target patterns against the task's layers) and trains it.
func (b Builtin) Run(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
	cfg, err := train.TrialConfig(t)
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	tr := b.T
	if tr == nil {
		tr = &train.Trainer{}
	}
	err = tr.Run(ctx, cfg, dir, r)
	var d *trainer.DivergedError
	if errors.As(err, &d) {
		return d
	}
	return err
}

// TargetMetricName names the metric the builtin engine reports as
// target_metric for the trial's task (trials.parquet's target_metric_name).
func (Builtin) TargetMetricName(t sweeps.Trial) string { return train.TargetMetricName(t.Task) }
