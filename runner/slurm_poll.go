package runner

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// Default poll interval of the Slurm driver when [executor] poll_every is 0.
const defaultPollEvery = 10 * time.Second

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
