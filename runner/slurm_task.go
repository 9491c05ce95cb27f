package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"peftbench/sweeps"
)

// RunTrial runs the trial at index of a plan whose results folder is
// sweepDir, exactly as the local executor runs one trial (same reporter,
// timeout, divergence and panic handling, same shard), and returns the
// trial's status. It is what `bench trial` calls inside a Slurm task.
//
// The driver, not the task, retries: the trial runs once. attempt (1, 2, …)
// is recorded in the shard's attempts column. The GPUs are those Slurm gave
// the task (CUDA_VISIBLE_DEVICES); threads are [resources]
// threads_per_trial, else the task's CPUs (SLURM_CPUS_PER_TASK), else all.
func RunTrial(ctx context.Context, plan *sweeps.Plan, sweepDir string, index, attempt int, opts Options) (string, error) {
	if plan == nil || index < 0 || index >= len(plan.Trials) || plan.Trials[index].Index != index {
		return "", fmt.Errorf("runner: no trial with index %d in the plan", index)
	}
	abs, err := filepath.Abs(sweepDir)
	if err != nil {
		return "", fmt.Errorf("runner: %w", err)
	}
	if filepath.Base(abs) != plan.Name {
		return "", fmt.Errorf("runner: %s is not the results folder of sweep %q", sweepDir, plan.Name)
	}
	p := *plan
	p.Executor = sweeps.Executor{Kind: "local"}
	p.Resources.Retries = 0
	p.Resources.GPUs, p.Resources.GPUsAuto, p.Resources.GPUsPerTrial = nil, false, 0
	opts.Out = filepath.Dir(abs)
	opts.Workers = 1
	if opts.CPUs <= 0 {
		if n, err := strconv.Atoi(os.Getenv("SLURM_CPUS_PER_TASK")); err == nil && n > 0 {
			opts.CPUs = n
		} else if plan.Executor.CPUsPerTask > 0 {
			opts.CPUs = plan.Executor.CPUsPerTask
		}
	}
	var status string
	events := opts.Events
	opts.Events = func(ev Event) {
		if ev.Type == EventTrialFinished {
			status = ev.Status
		}
		if events != nil {
			events(ev)
		}
	}
	r, err := newRun(ctx, &p, opts)
	if err != nil {
		return "", err
	}
	if r.prev == nil {
		return "", fmt.Errorf("runner: %s has no manifest: not a submitted sweep", sweepDir)
	}
	var devices []string
	if v := os.Getenv("CUDA_VISIBLE_DEVICES"); v != "" && plan.Executor.GPUsPerTask > 0 {
		devices = strings.Split(v, ",")
	}
	t := p.Trials[index]
	r.progress = Progress{Total: 1}
	// The shard is written once, with its attempt: the driver polls it
	// and compacts the tables while tasks still run, so a shard rewritten
	// in place could be missed between its removal and its rename.
	r.attemptBase = max(attempt, 1) - 1
	if err := r.runTrial(ctx, t, devices); err != nil {
		return status, err
	}
	return status, nil
}
