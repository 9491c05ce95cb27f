package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sourcegraph/conc/pool"

	"peftbench/results"
	"peftbench/sweeps"
)

// HarnessVersion is recorded in every manifest. A release build stamps the
// main module's version over it (see harnessVersion).
var HarnessVersion = "0.1.0-dev"

// Options configure Run. The zero value runs with the plan's resources, into
// "results", without a trainer (which fails for builtin sweeps).
type Options struct {
	// Out is the parent results folder; a sweep's results land in
	// Out/<sweep name>. Default "results".
	Out string
	// Workers overrides [resources] workers when > 0.
	Workers int
	// Trainer trains trials of sweeps whose [trainer] kind is "builtin" (or
	// unset). Sweeps with kind "command" use the external Command trainer.
	Trainer Trainer
	// Force allows rerunning a sweep whose file changed since its results
	// folder was written. Trials whose ID is still in the plan keep their
	// results (equal IDs mean equal configs); the others are removed.
	Force bool
	// Events receives progress events, one call at a time, in order.
	Events func(Event)
	// AfterTrial, when set, runs after a trial ends ok and before its shard is
	// written; analysis uses it to fill spectra from the trial's artifacts.
	// It runs under the trial's own deadline (one deadline covers training
	// and analysis) on a copy of the shard, and is abandoned Grace after the
	// deadline. An error fails the trial, unless ctx was cancelled or the
	// error is a context.Canceled (the trial is recorded cancelled and rerun
	// on resume) or the deadline passed (recorded timeout); either way its
	// training metrics are kept in the shard.
	AfterTrial func(ctx context.Context, t sweeps.Trial, dir string, artifacts map[string]string, s *results.Shard) error

	// CPUs is the number of cores split between concurrent trials; default
	// runtime.NumCPU().
	CPUs int
	// Now is the clock; default time.Now. Tests fix it to get byte-identical
	// tables across runs.
	Now func() time.Time
	// Backoff is the wait before retry number attempt (1, 2, …) of a failed
	// trial; default 1s·2^(attempt-1), at most one minute.
	Backoff func(attempt int) time.Duration
	// Grace is how long a trainer or the AfterTrial hook may take to return
	// once its context ended (timeout, divergence, Ctrl-C) before the runner
	// abandons it; default 30s.
	Grace time.Duration

	// Detach, for executors whose trials run outside this process
	// (Followers), submits the sweep and returns without following it;
	// others refuse it.
	Detach bool
	// Log receives an executor's own lines (submissions, resubmissions,
	// warnings). Nil discards them.
	Log io.Writer
	// Interrupted is asked, when ctx is cancelled while an executor follows
	// trials running outside this process, whether to cancel them (true) or
	// leave them running (false); work names them for a person, e.g.
	// "Slurm arrays 12 13". Nil leaves them running. The CLI asks on the
	// terminal.
	Interrupted func(work string) bool
}

// Summary tells what a Run did.
type Summary struct {
	Dir     string         // the sweep's results folder
	Total   int            // trials in the plan
	Skipped int            // finished before this run (resumed)
	Counts  map[string]int // trials of the plan with a shard, by status
	Elapsed time.Duration
	// StepsExecuted is, under [early_stopping], the training steps its
	// schedule runs, every rung's rerun from step 0 counted (see asha.go);
	// FullSteps what the same trials cost run to the end. Zero otherwise.
	StepsExecuted, FullSteps int64
}

// localExecutor runs trials in this process: a pool of workers sharing the
// cores and the GPU slots of [resources].
type localExecutor struct{}

func init() { RegisterExecutor("local", localExecutor{}) }

func (localExecutor) Info() ExecutorInfo { return ExecutorInfo{Kind: "local"} }

func (localExecutor) Run(ctx context.Context, plan *sweeps.Plan, opts Options) (Summary, error) {
	return Run(ctx, plan, opts)
}

// Run is the local executor: it executes the plan on the local machine and
// records its results under opts.Out/<plan.Name>: the manifest first, then
// one shard per trial as each ends, then the compacted tables. Everything that can be checked is checked
// before the results folder is created.
//
// Rerunning a plan resumes it: trials whose shard says ok or diverged are
// skipped (a diverged trial is deterministic, it would diverge again); failed,
// timed-out and cancelled trials run again. A results folder written from a
// different sweep file (another source hash) is refused unless opts.Force.
//
// Run returns a nil error when every trial ran, whatever their statuses; the
// caller reads the statuses from the Summary. When ctx is cancelled, running
// trials are cancelled and recorded as cancelled, no new trial starts, the
// tables are compacted from what finished, and the error wraps ctx's error.
//
// The local executor cannot detach: opts.Detach is refused. A tune sweep
// (plan.Protocol) runs in two phases, search then test (see runTune).
func Run(ctx context.Context, plan *sweeps.Plan, opts Options) (Summary, error) {
	if plan != nil && plan.Protocol != nil {
		return runTune(ctx, plan, opts)
	}
	return runTrials(ctx, plan, opts)
}

// runTrials runs the plan's trials: Run for a plain sweep, one phase of a
// tune sweep.
func runTrials(ctx context.Context, plan *sweeps.Plan, opts Options) (Summary, error) {
	start := time.Now()
	if opts.Detach {
		return Summary{}, errors.New("runner: the local executor cannot detach: its trials run inside this process")
	}
	r, err := newRun(ctx, plan, opts)
	if err != nil {
		return Summary{}, err
	}
	sum, err := r.run(ctx)
	sum.Elapsed = time.Since(start)
	return sum, err
}

// run is one execution of a plan.
type run struct {
	plan    *sweeps.Plan
	opts    Options
	dir     string
	trainer Trainer
	workers int
	threads int
	slots   [][]string // GPU device groups; nil without GPUs
	now     func() time.Time
	host    string

	prev *results.Manifest // manifest of an earlier run, nil when fresh

	// attemptBase is added to each attempt number recorded: a Slurm task
	// running a trial's attempt n runs it once with attemptBase n-1, so its
	// shard is written once, complete, with the attempt the driver expects.
	attemptBase int

	// trialFn runs one trial and records its shard; r.runTrial, replaced
	// by tests to inject a failing shard write.
	trialFn func(ctx context.Context, t sweeps.Trial, devices []string) error

	mu       sync.Mutex // guards the fields below and serialises events
	progress Progress
	status   map[string]string // trial ID → status of its shard, for the summary
	track    tracker           // labels and ETA of the events (progress.go)
}

// newRun prepares a local run of the plan: the sweep's record (newSweep),
// then the local executor's own checks: its kind, the trainer, GPU slots,
// workers and threads.
func newRun(ctx context.Context, plan *sweeps.Plan, opts Options) (*run, error) {
	r, err := newSweep(plan, opts)
	if err != nil {
		return nil, err
	}
	switch plan.Executor.Kind {
	case "", "local":
	default:
		return nil, fmt.Errorf("runner: executor %q is not supported by the local runner", plan.Executor.Kind)
	}
	if r.trainer, err = trainerFor(plan, opts.Trainer); err != nil {
		return nil, err
	}

	slots, err := gpuSlots(ctx, plan.Resources)
	if err != nil {
		return nil, err
	}
	r.slots = slots

	cpus := opts.CPUs
	if cpus <= 0 {
		cpus = runtime.NumCPU()
	}
	r.workers = opts.Workers
	if r.workers <= 0 {
		r.workers = plan.Resources.Workers
	}
	if r.workers <= 0 {
		r.workers = cpus
	}
	if slots != nil && r.workers > len(slots) {
		r.workers = len(slots) // a worker without a GPU slot would only wait
	}
	r.threads = plan.Resources.ThreadsPerTrial
	if r.threads <= 0 {
		r.threads = max(1, cpus/r.workers)
	}
	if err := r.readPrev(); err != nil {
		return nil, err
	}
	return r, nil
}

// newSweep checks the plan and sets up what every executor shares: the
// results folder, the clock, progress events and the rows of trials. It
// reads nothing from disk.
func newSweep(plan *sweeps.Plan, opts Options) (*run, error) {
	if plan == nil {
		return nil, errors.New("runner: nil plan")
	}
	if err := checkName(plan.Name); err != nil {
		return nil, err
	}
	if len(plan.Trials) == 0 {
		return nil, fmt.Errorf("runner: sweep %q has no trials", plan.Name)
	}
	seen := make(map[string]int, len(plan.Trials))
	for i, t := range plan.Trials {
		if t.ID == "" || strings.ContainsAny(t.ID, `/\`) || t.ID == "." || t.ID == ".." {
			return nil, fmt.Errorf("runner: trial %d has an invalid ID %q", i, t.ID)
		}
		if j, ok := seen[t.ID]; ok {
			return nil, fmt.Errorf("runner: trials %d and %d share the ID %s", j, i, t.ID)
		}
		seen[t.ID] = i
	}

	r := &run{plan: plan, opts: opts, now: opts.Now, status: map[string]string{}}
	if r.now == nil {
		r.now = time.Now
	}
	if r.opts.Out == "" {
		r.opts.Out = "results"
	}
	if r.opts.Backoff == nil {
		r.opts.Backoff = defaultBackoff
	}
	if r.opts.Grace <= 0 {
		r.opts.Grace = 30 * time.Second
	}
	r.dir = filepath.Join(r.opts.Out, plan.Name)
	r.host, _ = os.Hostname()
	r.trialFn = r.runTrial
	return r, nil
}

// trainerFor is the trainer of the plan's [trainer] kind: builtin (nil when
// none is linked in is an error) or an external command, checked here.
func trainerFor(plan *sweeps.Plan, builtin Trainer) (Trainer, error) {
	switch plan.Trainer.Kind {
	case "", "builtin":
		if builtin == nil {
			return nil, errors.New("runner: no builtin trainer linked in")
		}
		return builtin, nil
	case "command":
		return NewCommand(plan.Trainer, filepath.Dir(plan.File))
	default:
		return nil, fmt.Errorf("runner: unknown trainer kind %q", plan.Trainer.Kind)
	}
}

// readPrev reads the manifest of an earlier run into r.prev, refusing one
// written from another version of the sweep file unless opts.Force.
func (r *run) readPrev() error {
	prev, err := results.ReadManifest(r.dir)
	switch {
	case err == nil:
		if prev.SourceHash != r.plan.SourceHash && !r.opts.Force {
			return fmt.Errorf("runner: %s holds results of a different version of sweep %q (source hash %.12s, now %.12s); "+
				"rerun with --force to keep the trials still in the sweep and drop the others, or give the sweep a new name",
				r.dir, r.plan.Name, prev.SourceHash, r.plan.SourceHash)
		}
		r.prev = prev
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("runner: %s: %w", r.dir, err)
	}
	return nil
}

// checkName refuses sweep names that would escape the results folder.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0) {
		return fmt.Errorf("runner: sweep name %q cannot name a results folder", name)
	}
	return nil
}

func defaultBackoff(attempt int) time.Duration {
	d := time.Second << min(attempt-1, 6)
	return min(d, time.Minute)
}

func (r *run) run(ctx context.Context) (Summary, error) {
	sum := Summary{Dir: r.dir, Total: len(r.plan.Trials), Counts: map[string]int{}}
	// One run at a time per results folder: a second would run every
	// trial again, clobber their logs, and its --force could delete the
	// first's folders.
	lock, err := results.LockSweep(r.dir)
	if err != nil {
		return sum, fmt.Errorf("runner: sweep %q: %w", r.plan.Name, err)
	}
	defer lock.Unlock()
	if r.prev != nil {
		// Read again under the lock: a run that ended meanwhile may have
		// rewritten it.
		if prev, err := results.ReadManifest(r.dir); err == nil {
			if prev.SourceHash != r.plan.SourceHash && !r.opts.Force {
				return sum, fmt.Errorf("runner: %s now holds results of another version of sweep %q (written by a run that ended meanwhile); rerun with --force to replace them",
					r.dir, r.plan.Name)
			}
			r.prev = prev
		}
	}
	if _, err := results.RemoveTemps(r.dir); err != nil { // left by a writer that crashed
		return sum, fmt.Errorf("runner: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(r.dir, results.TrialsDir), 0o755); err != nil {
		return sum, fmt.Errorf("runner: %w", err)
	}
	started := r.now().UTC()
	if r.prev != nil && r.prev.SourceHash == r.plan.SourceHash && !r.prev.Started.IsZero() {
		started = r.prev.Started // a resumed sweep started when it first started
	}
	man, err := r.manifest(started)
	if err != nil {
		return sum, err
	}
	if err := results.WriteManifest(r.dir, man); err != nil {
		return sum, fmt.Errorf("runner: %w", err)
	}
	if r.prev != nil && r.prev.SourceHash != r.plan.SourceHash {
		if err := r.dropStale(); err != nil {
			return sum, err
		}
	}

	shards, err := results.ReadShards(r.dir)
	if err != nil {
		return sum, fmt.Errorf("runner: %w", err)
	}
	var pending []sweeps.Trial
	for _, t := range r.plan.Trials {
		s, ok := shards[t.ID]
		if ok {
			r.status[t.ID] = s.Trial.Status
		}
		if ok && finished(s.Trial.Status) {
			sum.Skipped++
			dropLive(r.dir, t.ID) // live.go: a kill between the shard and the log's removal
			continue
		}
		pending = append(pending, t)
	}

	if r.plan.EarlyStopping != nil {
		pending, sum.Skipped = nil, 0 // the scheduler decides what runs
	}
	r.progress = Progress{Total: len(r.plan.Trials), Skipped: sum.Skipped}
	r.track.left = pending
	r.emit(Event{Type: EventSweepStarted, Dir: r.dir, Workers: r.workers, Threads: r.threads})

	var trialErr []error
	if r.plan.EarlyStopping != nil {
		trialErr = r.asha(ctx, &sum)
	} else {
		trialErr, _ = r.runTrials(ctx, pending, nil)
	}

	if err := results.Compact(r.dir); err != nil {
		trialErr = append(trialErr, fmt.Errorf("runner: %w", err))
	}
	man.Ended = r.now().UTC()
	if err := results.WriteManifest(r.dir, man); err != nil {
		trialErr = append(trialErr, fmt.Errorf("runner: %w", err))
	}

	r.mu.Lock()
	for _, st := range r.status {
		sum.Counts[st]++
	}
	r.mu.Unlock()
	r.emit(Event{Type: EventSweepFinished, Dir: r.dir})

	if ctx.Err() != nil {
		r.mu.Lock()
		pr := r.progress
		r.mu.Unlock()
		notRun := pr.Total - pr.Skipped - pr.Done
		trialErr = append([]error{fmt.Errorf("runner: sweep %q interrupted (%d cancelled, %d not started); rerun to resume: %w",
			r.plan.Name, pr.Cancelled, notRun, context.Cause(ctx))}, trialErr...)
	}
	return sum, errors.Join(trialErr...)
}

// runTrials runs trials on the worker pool, each under with(ctx, t) when
// with is set (an early-stopping rung), and returns the errors of what the
// runner itself could not do; halted says a shard write found the disk
// full, after which no trial starts.
func (r *run) runTrials(ctx context.Context, pending []sweeps.Trial, with func(context.Context, sweeps.Trial) context.Context) (trialErr []error, halted bool) {
	var (
		errMu    sync.Mutex
		diskFull error // the first shard write that failed for want of space
		launched int   // trials started
	)
	stopped := func() bool { // no more trials start after a disk-full write
		errMu.Lock()
		defer errMu.Unlock()
		return diskFull != nil
	}
	slots := make(chan []string, max(len(r.slots), 1))
	for _, s := range r.slots {
		slots <- s
	}
	p := pool.New().WithMaxGoroutines(max(1, min(r.workers, len(pending))))
	for _, t := range pending {
		if ctx.Err() != nil || stopped() {
			break
		}
		p.Go(func() {
			var devices []string
			if r.slots != nil {
				select {
				case devices = <-slots:
					defer func() { slots <- devices }()
				case <-ctx.Done():
					return
				}
			}
			if ctx.Err() != nil {
				return // cancelled while queued: not started, nothing recorded
			}
			errMu.Lock()
			if diskFull != nil {
				errMu.Unlock()
				return // queued when the disk filled: not started
			}
			launched++
			errMu.Unlock()
			tctx := ctx
			if with != nil {
				tctx = with(ctx, t)
			}
			if err := r.trialFn(tctx, t, devices); err != nil {
				errMu.Lock()
				if errors.Is(err, syscall.ENOSPC) && diskFull == nil {
					diskFull = err
				} else {
					trialErr = append(trialErr, err)
				}
				errMu.Unlock()
			}
		})
	}
	p.Wait()
	if diskFull != nil {
		trialErr = append([]error{fmt.Errorf("runner: sweep %q: disk full: %w; %d trials not started; free space and rerun to resume",
			r.plan.Name, diskFull, len(pending)-launched)}, trialErr...)
	}

	return trialErr, diskFull != nil
}

// finished reports whether a trial with this status is skipped on resume.
func finished(status string) bool {
	return status == results.StatusOK || status == results.StatusDiverged
}

// dropStale removes the folders of trials no longer in the plan, after a
// forced rerun of a changed sweep file.
//
// A tune sweep's plan lists its search trials only; the test trial of any
// search trial at any test seed is kept too (its ID depends on the point
// and seed alone), so a forced rerun after widening a grid reruns only the
// test trials of groups whose choice changes.
func (r *run) dropStale() error {
	keep := make(map[string]bool, len(r.plan.Trials))
	for _, t := range r.plan.Trials {
		keep[t.ID] = true
		if pr := r.plan.Protocol; pr != nil && t.Phase == sweeps.PhaseSearch {
			for _, seed := range pr.TestSeeds {
				tt, err := r.plan.TestTrial(t, seed, 0)
				if err != nil {
					return fmt.Errorf("runner: %w", err)
				}
				keep[tt.ID] = true
			}
		}
	}
	root := filepath.Join(r.dir, results.TrialsDir)
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
				return fmt.Errorf("runner: %w", err)
			}
		}
	}
	return nil
}

func (r *run) manifest(started time.Time) (*results.Manifest, error) {
	trials, err := json.Marshal(r.plan.Trials)
	if err != nil {
		return nil, fmt.Errorf("runner: encoding trials: %w", err)
	}
	return &results.Manifest{
		Sweep:          r.plan.Name,
		Description:    r.plan.Description,
		SweepFile:      r.plan.File,
		SweepSource:    r.plan.Source,
		SourceHash:     r.plan.SourceHash,
		Trials:         trials,
		GitCommit:      gitCommit(),
		GoVersion:      runtime.Version(),
		Host:           r.host,
		HarnessVersion: harnessVersion(),
		Started:        started,
	}, nil
}

// harnessVersion is the main module's version when the binary was built from
// a tagged module, else HarnessVersion.
func harnessVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return HarnessVersion
}

// emit updates nothing; it stamps ev with the sweep, time and progress and
// hands it to the sink. Callers hold no lock.
func (r *run) emit(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.emitLocked(ev)
}

func (r *run) emitLocked(ev Event) {
	if r.opts.Events == nil {
		return
	}
	ev.Time = r.now().UTC()
	ev.Sweep = r.plan.Name
	ev.Progress = r.progress
	r.track.decorate(r.plan, &ev)
	r.opts.Events(ev)
}

// newRow is a trial's row before it runs: identity filled, metrics NaN.
func (r *run) newRow(t sweeps.Trial) results.TrialRow {
	cfg, _ := json.Marshal(t) // a Trial always encodes: it holds TOML scalars only
	row := results.TrialRow{
		Sweep: r.plan.Name, TrialID: t.ID, Method: t.Method, Task: t.Task,
		Rank: int64(t.Rank), Seed: t.Seed, Index: int64(t.Index),
		Config: string(cfg),
		Host:   r.host,
	}
	row.ClearMetrics()
	row.MitigateLambda = mitigateLambda(t)
	if n, ok := r.trainer.(metricNamer); ok {
		row.TargetMetricName = n.TargetMetricName(t)
	}
	return row
}

// metricNamer is a Trainer that names the metric behind target_metric
// (Builtin); external trainers do not, and leave the column null.
type metricNamer interface {
	TargetMetricName(t sweeps.Trial) string
}

// mitigateLambda is the trial's intruder-mitigation lambda, NaN for none.
func mitigateLambda(t sweeps.Trial) float64 {
	if t.MitigateIntruders == nil {
		return math.NaN()
	}
	return t.MitigateIntruders.Lambda
}

// sortedKeys returns m's keys in order, for stable logs.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
