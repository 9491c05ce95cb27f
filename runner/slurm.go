package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
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
const (
	SlurmDir       = ".slurm"
	PlanFile       = "plan.json"
	slurmPlanFile  = "plan.gob"
	slurmStateFile = "state.json"
	slurmBinary    = "bench"
	slurmLock      = "lock"
)

// MaxArrayTasks is the most tasks one submitted array holds and the bound on
// array task IDs (Slurm's default MaxArraySize is 1001). Larger sweeps are
// submitted as several arrays; a task adds its array's offset to its ID.
var MaxArrayTasks = 1000

// Default poll interval of the Slurm driver when [executor] poll_every is 0.
const defaultPollEvery = 10 * time.Second

// SlurmOptions configure RunSlurm and FollowSlurm.
type SlurmOptions struct {
	// Options as for the local executor: Out, Force, Events, Now. Trainer is
	// not used by the driver (tasks train); CPUs, Backoff and Grace apply to
	// the tasks through RunTrial.
	Options
	// Detach submits the array and returns without following it; `bench
	// status DIR` follows it later.
	Detach bool
	// Worker is the command a task runs, before the appended "trial --sweep
	// DIR --index I --attempt A" arguments. Default: a copy of this binary
	// in DIR/.slurm/bench (a `go run` binary vanishes when it exits).
	Worker []string
	// Log receives the driver's own lines: submissions, resubmissions,
	// warnings (filesystem, held tasks). Nil discards them.
	Log io.Writer
	// Interrupted is asked, when ctx is cancelled while following, whether
	// to cancel the submitted arrays (scancel); false leaves them running.
	// Nil leaves them running. See AskCancel.
	Interrupted func(jobs []string) bool
}

// Slurm job states, as squeue's %T prints them.
const (
	StatePending     = "PENDING"
	StateConfiguring = "CONFIGURING"
	StateRunning     = "RUNNING"
	StateCompleting  = "COMPLETING"
	StateCompleted   = "COMPLETED"
	StateFailed      = "FAILED"
	StateCancelled   = "CANCELLED"
	StateTimeout     = "TIMEOUT"
	StateNodeFail    = "NODE_FAIL"
	StatePreempted   = "PREEMPTED"
	StateOutOfMemory = "OUT_OF_MEMORY"
	StateBootFail    = "BOOT_FAIL"
	StateDeadline    = "DEADLINE"
	StateUnknown     = "UNKNOWN"
	// StateLost is the driver's own state for a task Slurm no longer lists
	// and that left no result: cancelled while pending, or purged after
	// MinJobAge before the driver looked.
	StateLost = "LOST"
)

// TaskState is what the driver knows of one array task.
type TaskState struct {
	JobID  string // the task's own job ID (%A)
	Array  string // the array's job ID (%F)
	Task   int    // array task ID (%K)
	State  string // %T, e.g. RUNNING
	Reason string // %r, e.g. JobArrayTaskLimit, NonZeroExitCode
}

// StateClass sorts Slurm states for the driver.
type StateClass int

const (
	// Active: queued or running; wait.
	Active StateClass = iota
	// Ended: the task ended; its shard says how the trial went.
	Ended
	// EndedTimeout: Slurm's time limit (or deadline) stopped the task; the
	// trial is recorded as timed out and, like a local timeout, not retried.
	EndedTimeout
)

// ClassifyState sorts a Slurm state. States Slurm may add later are taken as
// active, so the driver never resubmits a task that may still run; UNKNOWN
// (the controller lost track of the task) is taken as ended without a result.
func ClassifyState(state string) StateClass {
	switch state {
	case StateCompleted, StateFailed, StateCancelled, StateNodeFail, StatePreempted,
		StateOutOfMemory, StateBootFail, StateUnknown, StateLost, "REVOKED":
		return Ended
	case StateTimeout, StateDeadline:
		return EndedTimeout
	}
	return Active
}

// slurmState is DIR/.slurm/state.json.
type slurmState struct {
	Sweep string     `json:"sweep"`
	Jobs  []slurmJob `json:"jobs"`
}

// slurmJob is one submitted array.
type slurmJob struct {
	ID        string    `json:"id"`      // array job ID
	Indices   []int     `json:"indices"` // plan indices it runs
	Offset    int       `json:"offset"`  // task ID = plan index - Offset
	Attempt   int       `json:"attempt"` // attempt number of every index in it
	Script    string    `json:"script"`
	Submitted time.Time `json:"submitted"`
}

// IsSlurmSweep reports whether dir holds a sweep submitted to Slurm.
func IsSlurmSweep(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, SlurmDir, slurmStateFile))
	return err == nil
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
	for _, t := range plan.Trials {
		if s, err := results.ReadShard(d.r.dir, t.ID); err == nil && finished(s.Trial.Status) {
			d.r.progress.Skipped++
			d.done[t.Index] = true
			continue
		}
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
	plan, err := ReadSlurmPlan(dir)
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

// ReadSlurmPlan reads the exact plan RunSlurm saved in a sweep folder.
func ReadSlurmPlan(dir string) (*sweeps.Plan, error) {
	f, err := os.Open(filepath.Join(dir, SlurmDir, slurmPlanFile))
	if err != nil {
		return nil, fmt.Errorf("runner: %s is not a sweep submitted to Slurm: %w", dir, err)
	}
	defer f.Close()
	plan := new(sweeps.Plan)
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(plan); err != nil {
		return nil, fmt.Errorf("runner: %s: %w", f.Name(), err)
	}
	return plan, nil
}

func init() {
	// Option values are TOML scalars or lists of them; gob needs the
	// interface types it may meet registered.
	gob.Register([]any{})
	gob.Register(map[string]any{})
}

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
	if err := r.runTrial(ctx, t, devices); err != nil {
		return status, err
	}
	if attempt > 1 {
		s, err := results.ReadShard(r.dir, t.ID)
		if err != nil {
			return status, fmt.Errorf("runner: %w", err)
		}
		s.Trial.Attempts = int64(attempt)
		if err := results.WriteShard(r.dir, s); err != nil {
			return status, fmt.Errorf("runner: %w", err)
		}
	}
	return status, nil
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

// noTrainer stands in for the trainer in the driver, which trains nothing.
type noTrainer struct{}

func (noTrainer) Run(context.Context, sweeps.Trial, string, Reporter) error {
	return errors.New("runner: the slurm driver does not train")
}

func newSlurmDriver(ctx context.Context, plan *sweeps.Plan, opts SlurmOptions) (*slurmDriver, error) {
	for i, t := range plan.Trials {
		if t.Index != i {
			return nil, fmt.Errorf("runner: trial %s has index %d at position %d", t.ID, t.Index, i)
		}
	}
	p := *plan
	p.Executor.Kind = "local" // newRun checks the rest as for a local run
	p.Resources.GPUs, p.Resources.GPUsAuto = nil, false
	lo := opts.Options
	if lo.Trainer == nil {
		lo.Trainer = noTrainer{}
	}
	lo.Workers = 1
	if lo.CPUs <= 0 {
		lo.CPUs = max(plan.Executor.CPUsPerTask, 1)
	}
	r, err := newRun(ctx, &p, lo)
	if err != nil {
		return nil, err
	}
	r.plan = plan
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

// prepare creates the results folder and writes what the tasks read.
func (d *slurmDriver) prepare() error {
	dir := d.r.dir
	if err := os.MkdirAll(filepath.Join(d.slurmDir(), "logs"), 0o755); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, results.TrialsDir), 0o755); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	started := d.r.now().UTC()
	if d.r.prev != nil && d.r.prev.SourceHash == d.plan.SourceHash && !d.r.prev.Started.IsZero() {
		started = d.r.prev.Started
	}
	man, err := d.r.manifest(started)
	if err != nil {
		return err
	}
	if err := results.WriteManifest(dir, man); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	if d.r.prev != nil && d.r.prev.SourceHash != d.plan.SourceHash {
		if err := d.r.dropStale(); err != nil {
			return err
		}
		os.Remove(filepath.Join(d.slurmDir(), slurmStateFile)) // arrays of the old sweep
	}
	if err := d.loadState(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	// The plan, absolute paths so tasks resolve them from any directory.
	p := *d.plan
	if p.File != "" {
		if abs, err := filepath.Abs(p.File); err == nil {
			p.File = abs
		}
	}
	*d.plan = p
	js, err := json.MarshalIndent(&p, "", "  ")
	if err != nil {
		return fmt.Errorf("runner: encoding plan: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, PlanFile), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var gb bytes.Buffer
	if err := gob.NewEncoder(&gb).Encode(&p); err != nil {
		return fmt.Errorf("runner: encoding plan: %w", err)
	}
	if err := writeAtomic(filepath.Join(d.slurmDir(), slurmPlanFile), gb.Bytes(), 0o644); err != nil {
		return err
	}

	if len(d.opts.Worker) == 0 {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("runner: slurm: finding the bench binary: %w", err)
		}
		bin, err := os.ReadFile(self)
		if err != nil {
			return fmt.Errorf("runner: slurm: copying the bench binary: %w", err)
		}
		dst := filepath.Join(d.slurmDir(), slurmBinary)
		if err := writeAtomic(dst, bin, 0o755); err != nil {
			return err
		}
		d.opts.Worker = []string{dst}
	}
	if msg := sharedFS(dir); msg != "" {
		d.logf("%s", msg)
	}
	return nil
}

// Filesystem magic numbers (statfs f_type) of filesystems a cluster's nodes
// commonly share.
var sharedMagic = map[int64]string{
	0x6969:     "nfs",
	0x0bd00bd0: "lustre",
	0x47504653: "gpfs",
	0x19830326: "beegfs",
	0xff534d42: "cifs",
	0xfe534d42: "smb2",
	0x00c36400: "cephfs",
	0x65735546: "fuse",
	0x013111a8: "ibrix",
	0x5346414f: "afs",
}

const tmpfsMagic = 0x01021994

// sharedFS says in one line whether dir looks shared between nodes; bench
// cannot know for sure, so it only warns.
func sharedFS(dir string) string {
	abs, _ := filepath.Abs(dir)
	var st syscall.Statfs_t
	if err := syscall.Statfs(abs, &st); err != nil {
		return fmt.Sprintf("cannot tell which filesystem holds %s (%v); the nodes must see it", abs, err)
	}
	typ := int64(st.Type) & 0xffffffff
	if name, ok := sharedMagic[typ]; ok {
		return fmt.Sprintf("%s is on %s, shared with the nodes if mounted there", abs, name)
	}
	if typ == tmpfsMagic || abs == "/tmp" || strings.HasPrefix(abs, "/tmp/") {
		return fmt.Sprintf("warning: %s is under /tmp or on tmpfs, which nodes do not share; tasks on other nodes will not find it (fine on a one-node cluster)", abs)
	}
	return fmt.Sprintf("warning: %s is on a local filesystem (type %#x); tasks on other nodes will not find it unless it is mounted there too", abs, typ)
}

// writeAtomic writes a file through a temp name and a rename.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("runner: %w", err)
	}
	return nil
}

// lock makes this process the sweep's only driver until unlock.
func (d *slurmDriver) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(d.slurmDir(), slurmLock), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("runner: another bench process is following %s", d.r.dir)
	}
	return func() { f.Close() }, nil
}

func (d *slurmDriver) loadState() error {
	data, err := os.ReadFile(filepath.Join(d.slurmDir(), slurmStateFile))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &d.state); err != nil {
		return fmt.Errorf("runner: %s: %w", filepath.Join(d.slurmDir(), slurmStateFile), err)
	}
	return nil
}

func (d *slurmDriver) saveState() error {
	data, err := json.MarshalIndent(&d.state, "", "  ")
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	return writeAtomic(filepath.Join(d.slurmDir(), slurmStateFile), append(data, '\n'), 0o644)
}

// latest returns the last array that holds index.
func (d *slurmDriver) latest(index int) (slurmJob, bool) {
	for i := len(d.state.Jobs) - 1; i >= 0; i-- {
		if slices.Contains(d.state.Jobs[i].Indices, index) {
			return d.state.Jobs[i], true
		}
	}
	return slurmJob{}, false
}

func (d *slurmDriver) jobIDs() []string {
	var ids []string
	for _, j := range d.state.Jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

// concurrency is how many tasks may run at once, for the start event.
func (d *slurmDriver) concurrency(n int) int {
	if t := d.plan.Executor.Throttle; t > 0 {
		return min(t, n)
	}
	return n
}

// submitArgs are the sbatch arguments of an array, script path last
// (omitted when empty, for a script on stdin).
func (d *slurmDriver) submitArgs(job slurmJob, script string) []string {
	ex := d.plan.Executor
	ids := make([]int, len(job.Indices))
	for i, x := range job.Indices {
		ids[i] = x - job.Offset
	}
	array := ArraySpec(ids, ex.Throttle)
	args := []string{"--parsable", "--array=" + array, "--job-name=peftbench-" + d.plan.Name}
	if d.r.dir != "" {
		args = append(args, "--output="+filepath.Join(d.slurmDir(), "logs", "%A_%a.out"))
	}
	if wd, err := os.Getwd(); err == nil {
		args = append(args, "--chdir="+wd)
	}
	if ex.Partition != "" {
		args = append(args, "--partition="+ex.Partition)
	}
	if ex.TimeLimit != "" {
		args = append(args, "--time="+ex.TimeLimit)
	}
	args = append(args, "--cpus-per-task="+strconv.Itoa(max(ex.CPUsPerTask, 1)))
	if ex.MemPerTask != "" {
		args = append(args, "--mem="+ex.MemPerTask)
	}
	if ex.GPUsPerTask > 0 {
		args = append(args, "--gpus-per-task="+strconv.Itoa(ex.GPUsPerTask))
	}
	args = append(args, ex.SbatchArgs...)
	if script != "" {
		args = append(args, script)
	}
	return args
}

// ArraySpec is sbatch's --array value for task IDs: sorted runs as ranges,
// e.g. "0-11%2" or "3,7-9". throttle ≤ 0 adds no %N.
func ArraySpec(ids []int, throttle int) string {
	ids = slices.Clone(ids)
	sort.Ints(ids)
	ids = slices.Compact(ids)
	var b strings.Builder
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ids[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	if throttle > 0 {
		b.WriteString("%" + strconv.Itoa(throttle))
	}
	return b.String()
}

// script is the batch script of a job: the setup lines, then the worker.
func (d *slurmDriver) script(job slurmJob, args []string) string {
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "# peftbench sweep %s, attempt %d of indices %s\n", d.plan.Name, job.Attempt, ArraySpec(job.Indices, 0))
	fmt.Fprintf(&b, "# submitted as: sbatch %s\n", strings.Join(args, " "))
	b.WriteString("set -eo pipefail\n")
	if s := strings.TrimSpace(d.plan.Executor.Setup); s != "" {
		b.WriteString(s + "\n")
	}
	var cmd []string
	for _, w := range d.opts.Worker {
		cmd = append(cmd, shellQuote(w))
	}
	index := `"$SLURM_ARRAY_TASK_ID"`
	if job.Offset > 0 {
		index = fmt.Sprintf(`"$((SLURM_ARRAY_TASK_ID + %d))"`, job.Offset)
	}
	cmd = append(cmd, "trial", "--sweep", shellQuote(d.r.dir), "--index", index, "--attempt", strconv.Itoa(job.Attempt))
	b.WriteString("exec " + strings.Join(cmd, " ") + "\n")
	return b.String()
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// submit sends indices as arrays (several when they span more than
// MaxArrayTasks IDs) and records them.
func (d *slurmDriver) submit(ctx context.Context, indices []int, attempt int) error {
	if len(indices) == 0 {
		return nil
	}
	sort.Ints(indices)
	chunks := map[int][]int{}
	for _, i := range indices {
		chunks[i/MaxArrayTasks*MaxArrayTasks] = append(chunks[i/MaxArrayTasks*MaxArrayTasks], i)
	}
	offsets := make([]int, 0, len(chunks))
	for o := range chunks {
		offsets = append(offsets, o)
	}
	sort.Ints(offsets)
	for _, off := range offsets {
		job := slurmJob{Indices: chunks[off], Offset: off, Attempt: attempt}
		n := len(d.state.Jobs) + 1
		job.Script = filepath.Join(d.slurmDir(), fmt.Sprintf("array-%d.sh", n))
		args := d.submitArgs(job, job.Script)
		if err := writeAtomic(job.Script, []byte(d.script(job, args)), 0o755); err != nil {
			return err
		}
		out, err := sbatchOut(ctx, args, "", d.plan.Executor)
		if err != nil {
			return err
		}
		id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
		if _, err := strconv.Atoi(id); err != nil {
			return fmt.Errorf("runner: slurm: sbatch printed %q, not a job ID", strings.TrimSpace(out))
		}
		job.ID = id
		job.Submitted = d.r.now().UTC()
		d.state.Jobs = append(d.state.Jobs, job)
		if err := d.saveState(); err != nil {
			return err
		}
		for _, i := range job.Indices {
			if d.started[i] {
				d.r.mu.Lock()
				d.r.progress.Running--
				d.r.mu.Unlock()
			}
			d.started[i] = false
			delete(d.missing, i)
		}
		d.logf("submitted array %s: %d trials (--array=%s), attempt %d", id, len(job.Indices), ArraySpec(ids(job), d.plan.Executor.Throttle), attempt)
	}
	return nil
}

func ids(job slurmJob) []int {
	out := make([]int, len(job.Indices))
	for i, x := range job.Indices {
		out[i] = x - job.Offset
	}
	return out
}

// slurmTimeout bounds each Slurm command.
const slurmTimeout = time.Minute

func sbatch(ctx context.Context, args []string, stdin string, ex sweeps.Executor) error {
	_, err := sbatchOut(ctx, args, stdin, ex)
	return err
}

// sbatchOut runs sbatch and turns its complaints into one clear error.
func sbatchOut(ctx context.Context, args []string, stdin string, ex sweeps.Executor) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, slurmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sbatch", args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", sbatchError(stderr.String(), err, ex)
	}
	return stdout.String(), nil
}

// sbatchError makes an error of sbatch's stderr, naming the [executor] key
// at fault where the message says which.
func sbatchError(stderr string, err error, ex sweeps.Executor) error {
	var msgs []string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		if m, ok := strings.CutPrefix(line, "sbatch: error: "); ok {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		if s := strings.TrimSpace(stderr); s != "" {
			msgs = append(msgs, firstLine(s))
		} else {
			msgs = append(msgs, err.Error())
		}
	}
	msg := strings.Join(msgs, "; ")
	low := strings.ToLower(msg)
	hint := ""
	switch {
	case strings.Contains(low, "partition"):
		hint = fmt.Sprintf(" ([executor] partition = %q; `sinfo -s` lists the partitions)", ex.Partition)
	case strings.Contains(low, "time limit"):
		hint = fmt.Sprintf(" ([executor] time_limit = %q)", ex.TimeLimit)
	case strings.Contains(low, "memory"):
		hint = fmt.Sprintf(" ([executor] mem_per_task = %q)", ex.MemPerTask)
	case strings.Contains(low, "gres") || strings.Contains(low, "gpu"):
		hint = fmt.Sprintf(" ([executor] gpus_per_task = %d)", ex.GPUsPerTask)
	case strings.Contains(low, "array"):
		hint = fmt.Sprintf(" ([executor] throttle = %d; MaxArraySize may be below %d)", ex.Throttle, MaxArrayTasks)
	}
	return fmt.Errorf("runner: slurm: sbatch refused the job array: %s%s", msg, hint)
}

// squeue lists the tasks of every array still followed, in one call.
func (d *slurmDriver) squeue(ctx context.Context) (map[taskKey]TaskState, error) {
	var jobs []string
	for _, j := range d.state.Jobs {
		for _, i := range j.Indices {
			if !d.done[i] {
				jobs = append(jobs, j.ID)
				break
			}
		}
	}
	if len(jobs) == 0 {
		return map[taskKey]TaskState{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, slurmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "squeue", "-h", "-t", "all", "-r", "-j", strings.Join(jobs, ","), "-o", "%A %F %K %T %r")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// Every job purged (older than MinJobAge): nothing is listed.
		if strings.Contains(stderr.String(), "Invalid job id") {
			return map[taskKey]TaskState{}, nil
		}
		return nil, fmt.Errorf("runner: slurm: squeue: %s", strings.TrimSpace(firstLine(stderr.String()+" "+err.Error())))
	}
	return ParseSqueue(stdout.String())
}

// ParseSqueue parses `squeue -h -r -o '%A %F %K %T %r'` output, keyed by
// array and task ID. Task lists a pending array prints unexpanded
// ("[4-11%2]") expand to one state per task.
func ParseSqueue(out string) (map[taskKey]TaskState, error) {
	tasks := map[taskKey]TaskState{}
	for n, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("runner: slurm: squeue line %d: want job, array, task, state and reason, have %q", n+1, line)
		}
		reason := strings.Join(f[4:], " ")
		state := strings.TrimSuffix(f[3], "+")
		if f[2] == "N/A" {
			continue // not an array task
		}
		taskIDs, err := parseTaskList(f[2])
		if err != nil {
			return nil, fmt.Errorf("runner: slurm: squeue line %d: %w", n+1, err)
		}
		for _, id := range taskIDs {
			tasks[taskKey{f[1], id}] = TaskState{JobID: f[0], Array: f[1], Task: id, State: state, Reason: reason}
		}
	}
	return tasks, nil
}

// parseTaskList parses "5", "[4-11%2]" or "1,3-5".
func parseTaskList(s string) ([]int, error) {
	s = strings.Trim(s, "[]")
	s, _, _ = strings.Cut(s, "%")
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("bad array task ID %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad array task range %q", part)
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

// lostAfter is how many polls a task may be unlisted, or ended without a
// result, before it counts as lost: a result written on a shared
// filesystem may show up a little after the task ends.
const lostAfter = 2

// follow polls until every trial is finished or out of retries.
func (d *slurmDriver) follow(ctx context.Context, start time.Time) (Summary, error) {
	every := d.plan.Executor.PollEvery
	if every <= 0 {
		every = defaultPollEvery
	}
	retries := max(d.plan.Resources.Retries, 0)
	for {
		states, err := d.poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return d.interrupted(ctx, start)
			}
			d.logf("%v (retrying)", err)
		} else {
			resubmit := map[int][]int{} // next attempt → indices
			for _, t := range d.plan.Trials {
				if d.done[t.Index] {
					continue
				}
				if next, ok := d.check(t, states, retries); ok {
					resubmit[next] = append(resubmit[next], t.Index)
				}
			}
			attempts := make([]int, 0, len(resubmit))
			for a := range resubmit {
				attempts = append(attempts, a)
			}
			sort.Ints(attempts)
			for _, a := range attempts {
				if err := d.submit(ctx, resubmit[a], a); err != nil {
					d.logf("resubmitting: %v", err)
					for _, i := range resubmit[a] {
						d.finish(d.plan.Trials[i], nil, results.StatusFailed, err.Error())
					}
				}
			}
		}
		if len(d.done) == len(d.plan.Trials) {
			break
		}
		if !sleep(ctx, every) {
			return d.interrupted(ctx, start)
		}
	}
	return d.finishSweep(start)
}

// check looks at one unfinished trial. It reports the attempt to resubmit
// it as, if it must be.
func (d *slurmDriver) check(t sweeps.Trial, states map[taskKey]TaskState, retries int) (next int, resubmit bool) {
	job, ok := d.latest(t.Index)
	if !ok {
		// Not submitted (an earlier driver died between submissions).
		return 1, true
	}
	shard, serr := results.ReadShard(d.r.dir, t.ID)
	if serr == nil && finished(shard.Trial.Status) {
		d.markStarted(t, job)
		d.finish(t, shard, shard.Trial.Status, shard.Trial.Error)
		return 0, false
	}
	st, listed := states[taskKey{job.ID, t.Index - job.Offset}]
	class := Ended
	if listed {
		class = ClassifyState(st.State)
	} else {
		st.State = StateLost
	}
	if class == Active {
		delete(d.missing, t.Index)
		if st.State == StateRunning || st.State == StateCompleting {
			d.markStarted(t, job)
		} else if st.State == StatePending && heldReason(st.Reason) && !d.warned[job.ID+st.Reason] {
			d.warned[job.ID+st.Reason] = true
			d.logf("array %s is held: %s (see `squeue -j %s`)", job.ID, st.Reason, job.ID)
		}
		return 0, false
	}
	// Ended or unlisted: decide once the result had time to appear. A shard
	// of an earlier attempt is no result of this one.
	hasShard := serr == nil && shard.Trial.Attempts == int64(job.Attempt)
	if !hasShard {
		shard = nil
	}
	if !hasShard {
		d.missing[t.Index]++
		if d.missing[t.Index] < lostAfter {
			return 0, false
		}
	}
	d.markStarted(t, job)
	reason := "slurm task " + job.ID + "_" + strconv.Itoa(t.Index-job.Offset) + " " + strings.ToLower(st.State)
	if st.Reason != "" && st.Reason != "None" {
		reason += " (" + st.Reason + ")"
	}
	if !hasShard {
		reason += " without a result"
	} else if shard.Trial.Error != "" {
		reason += ": " + shard.Trial.Error
	}
	status := results.StatusFailed
	if class == EndedTimeout {
		status = results.StatusTimeout
	}
	if class == EndedTimeout || job.Attempt > retries {
		d.finish(t, shard, status, reason)
		return 0, false
	}
	wait := 0.0
	d.r.emit(Event{Type: EventTrialRetry, Trial: ref(t), Attempt: job.Attempt + 1, Error: reason, Seconds: wait})
	return job.Attempt + 1, true
}

// heldReason reports whether a pending task's reason means it waits on
// something other than resources or its turn in the array.
func heldReason(r string) bool {
	switch r {
	case "", "None", "Priority", "Resources", "JobArrayTaskLimit", "BeginTime", "Dependency":
		return false
	}
	return true
}

func (d *slurmDriver) markStarted(t sweeps.Trial, job slurmJob) {
	if d.started[t.Index] {
		return
	}
	d.started[t.Index] = true
	d.r.mu.Lock()
	d.r.progress.Running++
	d.r.emitLocked(Event{Type: EventTrialStarted, Trial: ref(t), Attempt: job.Attempt})
	d.r.mu.Unlock()
}

// finish records a trial's final status, writing a shard for a trial that
// left none (or whose Slurm end the shard does not tell).
func (d *slurmDriver) finish(t sweeps.Trial, shard *results.Shard, status, reason string) {
	d.done[t.Index] = true
	attempt := 1
	if job, ok := d.latest(t.Index); ok {
		attempt = job.Attempt
	}
	if shard == nil || shard.Trial.Status != status || shard.Trial.Error != reason {
		if shard == nil {
			row := d.r.newRow(t)
			shard = &results.Shard{Trial: row}
			now := d.r.now().UTC()
			shard.Trial.StartedAt, shard.Trial.EndedAt = now, now
		}
		shard.Trial.Status, shard.Trial.Error = status, reason
		shard.Trial.Attempts = int64(attempt)
		if err := results.WriteShard(d.r.dir, shard); err != nil {
			d.logf("recording trial %s: %v", t.ID, err)
		}
	}
	d.r.mu.Lock()
	if d.started[t.Index] {
		d.r.progress.Running--
	}
	d.r.progress.Done++
	switch status {
	case results.StatusOK:
		d.r.progress.OK++
	case results.StatusDiverged:
		d.r.progress.Diverged++
	case results.StatusTimeout:
		d.r.progress.Timeout++
	case results.StatusCancelled:
		d.r.progress.Cancelled++
	default:
		d.r.progress.Failed++
	}
	d.r.emitLocked(Event{Type: EventTrialFinished, Trial: ref(t), Status: status, Error: shard.Trial.Error,
		Attempt: int(shard.Trial.Attempts), Seconds: shard.Trial.WallSeconds})
	d.r.mu.Unlock()
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
	if d.opts.Interrupted != nil && d.opts.Interrupted(jobs) {
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

// AskCancel returns an Interrupted function that asks on a terminal whether
// to cancel the arrays, and leaves them running when in is not a terminal.
func AskCancel(in *os.File, out io.Writer) func(jobs []string) bool {
	return func(jobs []string) bool {
		fi, err := in.Stat()
		if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			return false
		}
		fmt.Fprintf(out, "\ncancel Slurm arrays %s? [y/N] ", strings.Join(jobs, " "))
		line, _ := bufio.NewReader(in).ReadString('\n')
		line = strings.ToLower(strings.TrimSpace(line))
		return line == "y" || line == "yes"
	}
}
