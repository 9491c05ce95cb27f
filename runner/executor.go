package runner

import (
	"context"

	"peftbench/internal/registry"
	"peftbench/sweeps"
)

// An Executor runs the unfinished trials of a plan somewhere — in this
// process (local), as a Slurm job array (slurm) — and records their results
// under opts.Out/<plan.Name> with the local executor's resume rules: a
// trial whose shard says ok or diverged is not run again, a results folder
// of another version of the sweep file is refused unless opts.Force.
//
// Executors are registered by the [executor] kind that selects them, like
// methods and tasks (RegisterExecutor in the file that defines one); the
// CLI looks up the plan's (LookupExecutor) and knows none by name.
type Executor interface {
	// Info describes the executor; Info().Kind is its registered name.
	Info() ExecutorInfo
	// Run runs the plan's unfinished trials and returns what they did. It
	// returns a nil error when every trial ran, whatever their statuses;
	// when ctx is cancelled the error wraps context.Cause(ctx).
	Run(ctx context.Context, plan *sweeps.Plan, opts Options) (Summary, error)
}

// ExecutorInfo describes an executor.
type ExecutorInfo struct {
	Kind string // the [executor] kind that selects it
}

// A Follower is an executor whose trials run outside this process, so that
// it can detach (Options.Detach: submit and return) and follow a submitted
// sweep again later (`bench status DIR`). Detaching is this capability,
// not a kind: an executor that is no Follower refuses Options.Detach.
type Follower interface {
	Executor
	// Owns reports whether dir is the results folder of a sweep this
	// executor submitted.
	Owns(dir string) bool
	// Follow follows the sweep submitted in dir to its end, as Run does
	// after submitting it.
	Follow(ctx context.Context, dir string, opts Options) (Summary, error)
}

var executors = registry.New[Executor]("runner", "executor")

// RegisterExecutor makes an executor available under its [executor] kind.
// It panics if kind is empty, e is nil, kind is already registered, or
// e.Info().Kind differs from kind.
func RegisterExecutor(kind string, e Executor) {
	if e == nil {
		panic("runner: RegisterExecutor: nil executor " + kind)
	}
	executors.Register(kind, e.Info().Kind, e)
}

// LookupExecutor returns the executor registered under kind ("" is
// "local"). An unknown kind errors with the nearest registered kinds.
func LookupExecutor(kind string) (Executor, error) {
	if kind == "" {
		kind = "local"
	}
	return executors.Lookup(kind)
}

// ExecutorKinds returns the registered executor kinds, sorted.
func ExecutorKinds() []string { return executors.Names() }

// FollowerKinds returns the kinds of the registered executors that can
// detach and follow (Followers), sorted.
func FollowerKinds() []string {
	var kinds []string
	for _, k := range executors.Names() {
		if e, _ := executors.Lookup(k); isFollower(e) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

func isFollower(e Executor) bool {
	_, ok := e.(Follower)
	return ok
}

// FollowerOf returns the executor that submitted the sweep in dir, if any
// registered executor owns it.
func FollowerOf(dir string) (Follower, bool) {
	for _, k := range executors.Names() {
		e, _ := executors.Lookup(k)
		if f, ok := e.(Follower); ok && f.Owns(dir) {
			return f, true
		}
	}
	return nil, false
}
