package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"

	"peftbench/results"
	"peftbench/runner"
	"peftbench/sweeps"
	"peftbench/train"
)

func init() {
	register(command{
		Name:    "trial",
		Order:   90,
		Summary: "run one trial of a submitted sweep (what each task of a job array runs)",
		Run:     runTrial,
	})
}

// trialOptions are the runner options a task trains with: the same trainer,
// base-model cache and after-trial analysis as `bench run` on the local
// executor, so a trial's shard is the same wherever it ran.
var trialOptions = func(plan *sweeps.Plan, stderr io.Writer) (runner.Options, error) {
	cache, err := openCache("", stderr)
	if err != nil {
		return runner.Options{}, err
	}
	opts := runner.Options{Trainer: runner.Builtin{T: &train.Trainer{Cache: cache}}}
	opts.AfterTrial = spectraHook(plan, cache)
	return opts, nil
}

// runTrial is `bench trial --sweep DIR --index I [--attempt A]`. It runs the
// trial at index I of the plan `bench run` saved in DIR, writes its shard and
// exits 0 when the trial ended ok or diverged (a result), 1 otherwise, so
// Slurm's task state tells the same. SIGTERM (scancel, a time limit) records
// the trial as cancelled.
func runTrial(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trial", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sweep := fs.String("sweep", "", "the sweep's results folder, as `bench run` wrote it")
	index := fs.Int("index", -1, "the trial's index in the plan (a Slurm array task ID)")
	attempt := fs.Int("attempt", 1, "attempt number, recorded in the trial's row")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench trial --sweep DIR --index I [--attempt A]")
		fmt.Fprintln(stderr, "\nRuns one trial of a sweep that bench run submitted to an executor running trials outside it; each task runs it.")
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return usageErrorf("bench trial: unexpected argument %q", fs.Arg(0))
	}
	if *sweep == "" || *index < 0 {
		fs.Usage()
		return usageErrorf("bench trial: --sweep and --index are required")
	}
	if *attempt < 1 {
		return usageErrorf("bench trial: --attempt %d: want 1 or more", *attempt)
	}
	plan, err := runner.ReadPlan(*sweep)
	if err != nil {
		return fmt.Errorf("bench trial: %w", err)
	}
	ctx, stop := signalContext(os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, err := trialOptions(plan, stderr)
	if err != nil {
		return fmt.Errorf("bench trial: %w", err)
	}
	opts.Events = runner.NewLines(stderr)
	status, err := runner.RunTrial(ctx, plan, *sweep, *index, *attempt, opts)
	if err != nil {
		return fmt.Errorf("bench trial: %w", err)
	}
	fmt.Fprintf(stdout, "trial %d: %s\n", *index, status)
	if status == results.StatusCancelled && ctx.Err() != nil {
		// Cancelled by a signal (scancel, a time limit, Ctrl-C): exit
		// 143 or 130 as bench run does.
		return fmt.Errorf("bench trial: trial %d cancelled: %w", *index, context.Cause(ctx))
	}
	if status != results.StatusOK && status != results.StatusDiverged {
		return fmt.Errorf("bench trial: trial %d ended %s", *index, status)
	}
	return nil
}
