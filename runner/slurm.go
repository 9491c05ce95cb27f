package runner

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// The Slurm executor runs a sweep as a Slurm job array whose task i runs
// `bench trial --sweep DIR --index i`, which calls RunTrial: the local
// executor's own per-trial code path, so a trial gives the same shard, bit
// for bit, wherever it runs. The driver (RunSlurm, FollowSlurm) submits the
// array, polls task states with one squeue call per interval (no accounting
// database needed), reads shards as tasks end, and resubmits failed or lost
// indices as new, smaller arrays up to [resources] retries.
//
// Everything the tasks need lives in the sweep folder, which must be on a
// filesystem the nodes share:
//
//	DIR/plan.json              the resolved plan, for people and tools
//	DIR/.slurm/plan.gob        the same plan, exact (option types kept), read by tasks
//	DIR/.slurm/bench           a copy of the bench binary the tasks run
//	DIR/.slurm/state.json      the submitted arrays: job IDs, indices, attempt
//	DIR/.slurm/array-N.sh      the batch script of submission N
//	DIR/.slurm/logs/J_T.out    each task's stdout and stderr
//
// The driver is split by job: slurm.go runs and follows a sweep,
// slurm_submit.go writes the folder and submits arrays (sbatch),
// slurm_poll.go reads task states (squeue) and decides each trial's fate,
// slurm_state.go keeps the folder's state, and slurm_task.go is what a task
// runs (RunTrial).

// SlurmOptions configure RunSlurm and FollowSlurm.
type SlurmOptions struct {
	// Options as for the local executor: Out, Force, Events, Now, and
	// Detach, Log and Interrupted, which only executors like this one use.
	// Trainer is not used by the driver (tasks train); CPUs, Backoff and
	// Grace apply to the tasks through RunTrial.
	Options
	// Worker is the command a task runs, before the appended "trial --sweep
	// DIR --index I --attempt A" arguments. Default: a copy of this binary
	// in DIR/.slurm/bench (a `go run` binary vanishes when it exits).
	Worker []string
}

// slurmExecutor is the Slurm executor as registered: RunSlurm and
// FollowSlurm with the default worker.
type slurmExecutor struct{}

func init() { RegisterExecutor("slurm", slurmExecutor{}) }

func (slurmExecutor) Info() ExecutorInfo { return ExecutorInfo{Kind: "slurm"} }

func (slurmExecutor) Run(ctx context.Context, plan *sweeps.Plan, opts Options) (Summary, error) {
	if plan != nil && plan.EarlyStopping != nil {
		return Summary{}, errNoEarlyStopping("slurm")
	}
	return RunSlurm(ctx, plan, SlurmOptions{Options: opts})
}

func (slurmExecutor) Owns(dir string) bool { return IsSlurmSweep(dir) }

func (slurmExecutor) Follow(ctx context.Context, dir string, opts Options) (Summary, error) {
	return FollowSlurm(ctx, dir, SlurmOptions{Options: opts})
}

// RunSlurm submits the plan's unfinished trials to Slurm as one job array
// and, unless opts.Detach, follows it to the end like FollowSlurm. Its
// results folder, resume rules and refusal of a changed sweep file are the
// local executor's. Everything that can be checked is checked before the
// results folder is created, the submission itself with `sbatch --test-only`.
func RunSlurm(ctx context.Context, plan *sweeps.Plan, opts SlurmOptions) (Summary, error) {
	start := time.Now()
	if plan == nil {
		return Summary{}, errors.New("runner: nil plan")
	}
	if plan.Protocol != nil {
		return Summary{}, fmt.Errorf("runner: sweep %q: the slurm executor does not run [protocol] kind = %q sweeps yet (the test trials are chosen from the search trials' results, between two job arrays); run it with the local executor", plan.Name, plan.Protocol.Kind)
	}
	if plan.Executor.Kind != "slurm" {
		return Summary{}, fmt.Errorf("runner: executor %q is not slurm", plan.Executor.Kind)
	}
	d, err := newSlurmDriver(ctx, plan, opts)
	if err != nil {
		return Summary{}, err
	}
	if _, err := exec.LookPath("sbatch"); err != nil {
		return Summary{}, errors.New("runner: slurm: sbatch not found on PATH; run bench on a Slurm login node, or use [executor] kind = \"local\"")
	}
	probe := d.submitArgs(slurmJob{Indices: []int{0}}, "")
	if err := sbatch(ctx, append([]string{"--test-only"}, probe...), "#!/bin/sh\ntrue\n", d.plan.Executor); err != nil {
		return Summary{}, err
	}

	if err := d.prepare(); err != nil {
		return Summary{}, err
	}
	unlock, err := d.lock()
	if err != nil {
		return Summary{}, err
	}
	defer unlock()

	// Trials to submit: those without a finished shard that no array of an
	// earlier run still holds.
	active, err := d.poll(ctx)
	if err != nil {
		return Summary{}, err
	}
	var todo []int
	d.r.progress = Progress{Total: len(plan.Trials)}
	d.r.track.left = []sweeps.Trial{} // known: none but those below
	for _, t := range plan.Trials {
		if s, err := results.ReadShard(d.r.dir, t.ID); err == nil && finished(s.Trial.Status) {
			d.r.progress.Skipped++
			d.done[t.Index] = true
			continue
		}
		d.r.track.left = append(d.r.track.left, t)
		if job, ok := d.latest(t.Index); ok {
			if st, ok := active[taskKey{job.ID, t.Index - job.Offset}]; ok && ClassifyState(st.State) == Active {
				continue // still queued or running from an earlier run
			}
		}
		todo = append(todo, t.Index)
	}
	d.r.emit(Event{Type: EventSweepStarted, Dir: d.r.dir, Workers: d.concurrency(len(todo)), Threads: d.r.threads})
	if err := d.submit(ctx, todo, 1); err != nil {
		return Summary{Dir: d.r.dir, Total: len(plan.Trials)}, err
	}
	if opts.Detach {
		d.logf("detached: follow with `bench status %s`, cancel with `scancel %s`", d.r.dir, strings.Join(d.jobIDs(), " "))
		return d.summary(start)
	}
	return d.follow(ctx, start)
}

// FollowSlurm follows the arrays of a sweep submitted by RunSlurm (after
// --detach, or a driver that was stopped) to the end: it resubmits failed
// and lost trials within the retry limit, compacts the tables and returns
// the statuses. One driver follows a sweep at a time.
func FollowSlurm(ctx context.Context, dir string, opts SlurmOptions) (Summary, error) {
	start := time.Now()
	plan, err := ReadPlan(dir)
	if err != nil {
		return Summary{}, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Summary{}, fmt.Errorf("runner: %w", err)
	}
	opts.Out = filepath.Dir(abs)
	if filepath.Base(abs) != plan.Name {
		return Summary{}, fmt.Errorf("runner: %s holds sweep %q; its folder must be named after it", dir, plan.Name)
	}
	d, err := newSlurmDriver(ctx, plan, opts)
	if err != nil {
		return Summary{}, err
	}
	if err := d.loadState(); err != nil {
		return Summary{}, err
	}
	unlock, err := d.lock()
	if err != nil {
		return Summary{}, err
	}
	defer unlock()
	d.r.progress = Progress{Total: len(plan.Trials)}
	d.r.emit(Event{Type: EventSweepStarted, Dir: d.r.dir, Workers: d.concurrency(len(plan.Trials)), Threads: d.r.threads})
	return d.follow(ctx, start)
}

// slurmDriver submits and follows one sweep's arrays.
type slurmDriver struct {
	r     *run
	plan  *sweeps.Plan
	opts  SlurmOptions
	state slurmState
	poll  func(ctx context.Context) (map[taskKey]TaskState, error)

	done    map[int]bool // index → finished (ok or diverged, or out of retries)
	started map[int]bool // index → trial_started emitted for its latest attempt
	missing map[int]int  // index → consecutive polls its latest task was unlisted or ended without a shard
	warned  map[string]bool
}

type taskKey struct {
	array string
	task  int
}

// newSlurmDriver checks the plan as far as the submitting host can — the
// trainer command a task will run, the local executor's GPU settings — and
// sets up the sweep's record. The driver trains nothing.
func newSlurmDriver(ctx context.Context, plan *sweeps.Plan, opts SlurmOptions) (*slurmDriver, error) {
	for i, t := range plan.Trials {
		if t.Index != i {
			return nil, fmt.Errorf("runner: trial %s has index %d at position %d", t.ID, t.Index, i)
		}
	}
	r, err := newSweep(plan, opts.Options)
	if err != nil {
		return nil, err
	}
	if k := plan.Trainer.Kind; k != "" && k != "builtin" {
		// The builtin trainer is the tasks' own; a command is checked here.
		if _, err := trainerFor(plan, nil); err != nil {
			return nil, err
		}
	}
	// [resources] GPUs are the local executor's; a task gets its own from
	// Slurm ([executor] gpus_per_task).
	res := plan.Resources
	res.GPUs, res.GPUsAuto = nil, false
	if _, err := gpuSlots(ctx, res); err != nil {
		return nil, err
	}
	// The start event's threads: what each task trains with (RunTrial).
	r.workers = 1
	if r.threads = plan.Resources.ThreadsPerTrial; r.threads <= 0 {
		r.threads = opts.CPUs
		if r.threads <= 0 {
			r.threads = max(plan.Executor.CPUsPerTask, 1)
		}
	}
	if err := r.readPrev(); err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(r.dir); err == nil {
		r.dir = abs
	}
	d := &slurmDriver{r: r, plan: plan, opts: opts,
		done: map[int]bool{}, started: map[int]bool{}, missing: map[int]int{}, warned: map[string]bool{}}
	d.state.Sweep = plan.Name
	d.poll = d.squeue
	return d, nil
}

func (d *slurmDriver) logf(format string, args ...any) {
	if d.opts.Log != nil {
		fmt.Fprintf(d.opts.Log, "slurm: "+format+"\n", args...)
	}
}

func (d *slurmDriver) slurmDir() string { return filepath.Join(d.r.dir, SlurmDir) }

// concurrency is how many tasks may run at once, for the start event.
func (d *slurmDriver) concurrency(n int) int {
	if t := d.plan.Executor.Throttle; t > 0 {
		return min(t, n)
	}
	return n
}

// finishSweep compacts the tables and stamps the manifest's end.
func (d *slurmDriver) finishSweep(start time.Time) (Summary, error) {
	var errs []error
	if err := results.Compact(d.r.dir); err != nil {
		errs = append(errs, fmt.Errorf("runner: %w", err))
	}
	if man, err := results.ReadManifest(d.r.dir); err == nil {
		man.Ended = d.r.now().UTC()
		if err := results.WriteManifest(d.r.dir, man); err != nil {
			errs = append(errs, fmt.Errorf("runner: %w", err))
		}
	}
	d.r.emit(Event{Type: EventSweepFinished, Dir: d.r.dir})
	sum, err := d.summary(start)
	return sum, errors.Join(append(errs, err)...)
}

func (d *slurmDriver) summary(start time.Time) (Summary, error) {
	sum := Summary{Dir: d.r.dir, Total: len(d.plan.Trials), Skipped: d.r.progress.Skipped, Counts: map[string]int{}}
	shards, err := results.ReadShards(d.r.dir)
	if err != nil {
		return sum, fmt.Errorf("runner: %w", err)
	}
	for _, s := range shards {
		sum.Counts[s.Trial.Status]++
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// interrupted handles Ctrl-C while following: cancel the arrays or leave
// them running, as opts.Interrupted says.
func (d *slurmDriver) interrupted(ctx context.Context, start time.Time) (Summary, error) {
	jobs := d.jobIDs()
	sum, _ := d.summary(start)
	if d.opts.Interrupted != nil && d.opts.Interrupted("Slurm arrays "+strings.Join(jobs, " ")) {
		cctx, cancel := context.WithTimeout(context.Background(), slurmTimeout)
		defer cancel()
		out, err := exec.CommandContext(cctx, "scancel", jobs...).CombinedOutput()
		if err != nil {
			return sum, fmt.Errorf("runner: slurm: scancel %s: %s: %w", strings.Join(jobs, " "), strings.TrimSpace(string(out)), err)
		}
		results.Compact(d.r.dir)
		return sum, fmt.Errorf("runner: sweep %q interrupted; arrays %s cancelled; rerun to resume: %w",
			d.plan.Name, strings.Join(jobs, " "), context.Cause(ctx))
	}
	return sum, fmt.Errorf("runner: sweep %q: stopped following; arrays %s keep running: follow with `bench status %s`, cancel with `scancel %s`: %w",
		d.plan.Name, strings.Join(jobs, " "), d.r.dir, strings.Join(jobs, " "), context.Cause(ctx))
}
