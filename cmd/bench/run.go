package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"peftbench/catalog"
	"peftbench/results"
	"peftbench/runner"
	"peftbench/sweeps"
	"peftbench/tasks"
	"peftbench/train"
)

func init() {
	register(command{
		Name:    "run",
		Order:   10,
		Summary: "run a sweep file; results go to DIR/<sweep name>/",
		Run:     runRun,
	})
	register(command{
		Name:    "plan",
		Order:   20,
		Summary: "print the trials a sweep file expands to, without running them",
		Run:     runPlan,
	})
}

// loadPlan loads and validates a sweep file against the registries.
func loadPlan(path string) (*sweeps.Plan, error) {
	return sweeps.Load(path, catalog.Registries{})
}

func runRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "results", "parent `dir` of the sweep's results folder")
	workers := fs.Int("workers", 0, "concurrent trials (default: the sweep's [resources] workers, else one per core)")
	jsonOut := fs.Bool("json", false, "print progress as JSON events, one per line, on stdout")
	force := fs.Bool("force", false, "rerun a sweep whose file changed since its results were written")
	cacheDir := fs.String("cache", "", "base-model cache `dir` (default $PEFTBENCH_CACHE, else the user cache dir)")
	detach := fs.Bool("detach", false, "executors whose trials run outside bench: submit the sweep and exit; follow later with bench status DIR")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bench run FILE [--out DIR] [--workers N] [--json] [--force] [--cache DIR] [--detach]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, interleave(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageErrorf("bench run: want one sweep file, got %d arguments", fs.NArg())
	}
	plan, err := loadPlan(fs.Arg(0))
	if err != nil {
		return err
	}
	executor, err := runner.LookupExecutor(plan.Executor.Kind)
	if err != nil {
		return fmt.Errorf("bench run: %w", err)
	}
	if _, ok := executor.(runner.Follower); *detach && !ok {
		// This executor runs the trials in this process: there is nothing
		// to detach from, and ignoring the flag would leave the user
		// waiting on what they asked not to wait on.
		return usageErrorf("bench run: --detach needs an executor that can detach (kind = %s); sweep %q runs on the %s executor, "+
			"whose trials run inside this process (set [executor] kind to submit them, "+
			"or run without --detach, in the background if need be: nohup bench run %s > run.log 2>&1 &)",
			quoteList(runner.FollowerKinds()), plan.Name, executor.Info().Kind, fs.Arg(0))
	}
	for _, w := range plan.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	cache, err := openCache(*cacheDir, stderr)
	if err != nil {
		return err
	}
	opts := runner.Options{
		Out:     *out,
		Workers: *workers,
		Trainer: runner.Builtin{T: &train.Trainer{Cache: cache}},
		Force:   *force,

		Detach:      *detach,
		Log:         stderr,
		Interrupted: askCancel(os.Stdin, stderr),
	}
	opts.AfterTrial = spectraHook(plan, cache)
	closeBar := func() {}
	switch {
	case *jsonOut:
		opts.Events = runner.NewJSON(stdout)
	case isTerminal(stderr):
		// The bar owns the terminal's last line: every other line of
		// the run goes through it.
		bar := progressBar(stderr)
		opts.Events, opts.Log, cache.Log = bar.Event, bar, bar
		opts.Interrupted = pausing(bar, opts.Interrupted)
		closeBar = func() { bar.Close() }
	default:
		opts.Events = runner.NewLines(stderr)
	}
	ctx, stop := signalContext(os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := executor.Run(ctx, plan, opts)
	closeBar()
	if err == nil && *detach {
		fmt.Fprintf(stderr, "submitted; follow with: bench status %s\n", sum.Dir)
		return nil
	}
	if err != nil {
		return fmt.Errorf("bench run: %w", err)
	}
	// A trial early stopping did not promote ended as planned, not badly.
	if n := sum.Total - sum.Skipped - sum.Counts[results.StatusOK] - sum.Counts[results.StatusStopped]; n > 0 {
		fmt.Fprintf(stderr, "%d of %d trials did not end ok: bench status %s\n", n, sum.Total, sum.Dir)
	}
	return nil
}

// askCancel returns an Options.Interrupted that asks on a terminal whether
// to cancel the work an executor submitted, and leaves it running when in
// is not a terminal.
func askCancel(in *os.File, out io.Writer) func(work string) bool {
	return func(work string) bool {
		fi, err := in.Stat()
		if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			return false
		}
		fmt.Fprintf(out, "\ncancel %s? [y/N] ", work)
		line, _ := bufio.NewReader(in).ReadString('\n')
		line = strings.ToLower(strings.TrimSpace(line))
		return line == "y" || line == "yes"
	}
}

// quoteList is `"a" or "b"`, for messages.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, " or ")
}

// openCache opens the base-model cache: dir, else $PEFTBENCH_CACHE, else
// the user cache dir. Cache warnings (a corrupt entry rebuilt) go to w.
func openCache(dir string, w io.Writer) (*tasks.Cache, error) {
	if dir == "" {
		d, err := tasks.DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	c, err := tasks.NewCache(dir)
	if err != nil {
		return nil, err
	}
	c.Log = w
	return c, nil
}

func runPlan(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print the resolved plan as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bench plan FILE [--json]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, interleave(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageErrorf("bench plan: want one sweep file, got %d arguments", fs.NArg())
	}
	plan, err := loadPlan(fs.Arg(0))
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(stdout, plan)
	}
	fmt.Fprintf(stdout, "sweep %s: %d trials\n", plan.Name, len(plan.Trials))
	if plan.Protocol != nil {
		fmt.Fprintln(stdout, tunePlanLine(plan)) // best.go
	}
	if plan.Description != "" {
		fmt.Fprintf(stdout, "%s\n", plan.Description)
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	tw := newTable(stdout, "INDEX", "TRIAL", "METHOD", "RANK", "TASK", "SEED", "STEPS", "LR")
	for _, t := range plan.Trials {
		rank := "-"
		if t.Rank > 0 {
			rank = fmt.Sprint(t.Rank)
		}
		tw.row(fmt.Sprint(t.Index), t.ID, t.Method, rank, t.Task, fmt.Sprint(t.Seed), fmt.Sprint(t.Train.Steps), fmt.Sprint(t.Train.LR))
	}
	return tw.flush()
}

// interrupted is the cause of a context ended by a signal. Errors that wrap
// it (the runner wraps its context's cause) make bench exit 128 + the
// signal's number, as a shell reports a process killed by it: 130 for
// Ctrl-C (SIGINT), 143 for SIGTERM.
type interrupted struct{ sig os.Signal }

func (e interrupted) Error() string { return "interrupted by " + signalName(e.sig) }

// Is makes an interruption a context.Canceled, as signal.NotifyContext's is.
func (e interrupted) Is(target error) bool { return target == context.Canceled }

func (e interrupted) ExitCode() int {
	if s, ok := e.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// signalContext is signal.NotifyContext with the signal kept in the
// context's cause (an interrupted), so that the exit code can tell which
// one ended the run. Further signals are swallowed until stop is called, so
// that the runner can record what it cancelled.
func signalContext(sigs ...os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			cancel(interrupted{s})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}
