// Package trainer is the trainer contract: what the runner asks of a
// trainer and what it hands an external one. It holds the Trainer
// interface and the Reporter it reports into, DivergedError and the one
// divergence rule (Exploded), and the external protocol's trial file and
// version (docs/trainer-protocol.md).
//
// It is a leaf: the builtin engine (package train), the runner (which
// drives any Trainer and speaks the protocol to external ones) and the
// exporter (which reads trial files) all import it, and it imports nothing
// of the project but sweeps, whose Trial is what a trainer trains.
package trainer

import (
	"context"
	"math"
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
// summary metric became NaN or Inf (Tensor names it), or its training loss
// exploded (Reason says by how much; see Exploded, which the runner applies
// to every trainer's reports).
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

// DivergenceFactor bounds a training loss relative to the trial's initial
// loss; see Exploded. No trial of experiments/*.toml comes near it: their
// training losses stay below 2× their first step's (at most 1.80× in
// quick.toml, 1.96× in nightly.toml, 1.31× in intruders.toml's MLP trials
// at its highest learning rate, 1.00× in its text-code ones), while a
// learning rate that blows up (lr = 1e6) reaches 1e27 within a few steps.
const DivergenceFactor = 1000

// Exploded reports whether a finite training loss has diverged: it exceeds
// DivergenceFactor times the initial loss (the first step's), or times 1
// when the initial loss is below 1, so that a near-zero start, or a later
// stage of a continual task that starts higher than the first, is not
// mistaken for a divergence. Together with a NaN or Inf loss or gradient
// this is what the builtin trainer, and the runner for every trainer's
// reports, call diverged.
func Exploded(initial, loss float64) bool {
	return loss > DivergenceFactor*math.Max(initial, 1)
}
