package runner

import (
	"context"
	"strconv"

	"peftbench/sweeps"
)

// Trainer trains one trial. The builtin engine and the external command
// trainer both implement it; the runner does not care which it drives.
//
// Run reports metrics through r as they happen and returns when the trial
// ends. dir is the trial's own folder for logs and artifacts. A trial that
// diverges returns an error satisfying errors.As(err, new(*DivergedError)).
type Trainer interface {
	Run(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error
}

// Reporter receives what a trainer measures.
type Reporter interface {
	// Step records one metric at one step, e.g. (100, "train", "loss", 0.31).
	Step(step int, split, metric string, value float64)
	// Summary records one final metric of the trial, e.g. ("target_acc", 0.93).
	// Well-known names are listed in results (trials.parquet columns); others
	// land in the trial's extra metrics.
	Summary(name string, value float64)
	// Artifact records a file the trainer wrote under dir, e.g. tuned weights
	// ("weights", "tuned.safetensors").
	Artifact(name, path string)
	// Log records a line for the trial's log.
	Log(msg string)
}

// DivergedError ends a trial that diverged: its loss, a gradient or a
// summary metric became NaN or Inf, or its training loss exploded (see
// train.Exploded, which the runner applies to every trainer's reports).
type DivergedError struct {
	Step   int    // the step at which it was detected
	Tensor string // the first non-finite tensor or metric, if known
	Reason string // what diverged when it is not a non-finite tensor
}

func (e *DivergedError) Error() string {
	switch {
	case e.Reason != "":
		return "diverged at step " + strconv.Itoa(e.Step) + ": " + e.Reason
	case e.Tensor != "":
		return "diverged at step " + strconv.Itoa(e.Step) + ": non-finite " + e.Tensor
	}
	return "diverged at step " + strconv.Itoa(e.Step)
}
