package trainer

import (
	"context"
	"strconv"
)

// stopKey carries a trial's early-stopping step in its context.
type stopKey struct{}

// WithStopAfter returns a context asking the trainer to stop after step n
// (n > 0): train to the end of step n, evaluate there (validation, target,
// retain) as at an eval_every point, report, and return a *StoppedError.
// An early-stopping scheduler (successive halving) runs a trial to a rung
// this way; the trial keeps its configuration and identity, so its learning-
// rate schedule is the full run's, and a promoted trial rerun to a later
// rung repeats the same first n steps bit for bit.
func WithStopAfter(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, stopKey{}, n)
}

// StopAfter returns the step a trainer running under ctx must stop after,
// or 0 to run every configured step. A trainer that cannot honour it runs
// to the end; the runner then keeps only what was reported up to step n.
func StopAfter(ctx context.Context) int {
	n, _ := ctx.Value(stopKey{}).(int)
	return max(n, 0)
}

// StoppedError is what a trainer returns after stopping early at the step
// StopAfter asked for: not a failure; the runner records the trial as
// stopped, with what it reported up to Step.
type StoppedError struct {
	Step int
}

func (e *StoppedError) Error() string {
	return "stopped early after step " + strconv.Itoa(e.Step)
}
