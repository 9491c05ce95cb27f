package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
	"peftbench/trainer"
)

// devicesKey carries a trial's GPU devices in its context.
type devicesKey struct{}

// Devices returns the GPU device IDs the runner gave the trial running under
// ctx, nil when the sweep uses no GPUs. The runner holds each device group for
// one trial at a time. An in-process trainer selects these devices itself; the
// external Command trainer passes them as CUDA_VISIBLE_DEVICES.
func Devices(ctx context.Context) []string {
	d, _ := ctx.Value(devicesKey{}).([]string)
	return d
}

// WithDevices returns a context carrying devices, for trainers that start
// other trainers and for tests.
func WithDevices(ctx context.Context, devices []string) context.Context {
	return context.WithValue(ctx, devicesKey{}, devices)
}

var (
	errTimeout   = errors.New("trial timed out")
	errAbandoned = errors.New("trainer did not return after its context ended")
)

// runTrial runs one trial with its retries and records its shard. The error
// is for what the runner itself could not do (write the shard); the trial's
// own failure is its status.
func (r *run) runTrial(ctx context.Context, t sweeps.Trial, devices []string) error {
	t.Train.Threads = r.threads
	dir := results.ShardDir(r.dir, t.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("runner: trial %s: %w", t.ID, err)
	}
	logf, err := os.Create(filepath.Join(dir, "trial.log"))
	if err != nil {
		return fmt.Errorf("runner: trial %s: %w", t.ID, err)
	}
	defer logf.Close()
	log := &lineLog{w: logf}

	r.mu.Lock()
	r.progress.Running++
	r.emitLocked(Event{Type: EventTrialStarted, Trial: ref(t), Devices: devices, Attempt: r.attemptBase + 1})
	r.mu.Unlock()

	var (
		out     outcome
		rep     *reporter
		tctx    context.Context // the last attempt's: its deadline covers the after-trial analysis
		started = r.now().UTC()
	)
	timeout := r.plan.Resources.TrialTimeout(t)
	retries := max(r.plan.Resources.Retries, 0)
	for attempt := 1; ; attempt++ {
		log.printf("runner: attempt %d of trial %s (%s rank %d on %s, seed %d) threads=%d devices=%s timeout=%s",
			attempt, t.ID, t.Method, t.Rank, t.Task, t.Seed, r.threads, strings.Join(devices, ","), timeout)
		rep = newReporter(r.newRow(t), log)
		rep.events = func(ev Event) { ev.Trial = ref(t); r.emit(ev) }
		rep.row.Attempts = int64(r.attemptBase + attempt)
		rep.live = r.startLive(t, attempt, log)
		var end context.CancelCauseFunc
		tctx, end = r.trialContext(ctx, devices, timeout)
		defer end(nil)
		out = r.attempt(ctx, tctx, end, t, dir, rep, timeout)
		rep.live.close()
		log.printf("runner: attempt %d ended %s %s", attempt, out.status, out.err)
		if out.status != results.StatusFailed || attempt > retries || ctx.Err() != nil {
			break
		}
		end(nil)
		wait := r.opts.Backoff(attempt)
		r.emit(Event{Type: EventTrialRetry, Trial: ref(t), Attempt: attempt + 1, Error: out.err, Seconds: wait.Seconds()})
		if !sleep(ctx, wait) {
			out = outcome{status: results.StatusCancelled, err: context.Cause(ctx).Error()}
			break
		}
	}
	ended := r.now().UTC()

	s := rep.shard()
	s.Trial.Status = out.status
	s.Trial.Error = out.err
	s.Trial.DivergedStep = int64(out.divergedStep)
	s.Trial.StartedAt, s.Trial.EndedAt = started, ended
	s.Trial.WallSeconds = ended.Sub(started).Seconds()

	if out.status == results.StatusOK && r.opts.AfterTrial != nil {
		s = r.afterTrial(ctx, tctx, t, dir, rep.artifactsCopy(), s, timeout, log)
	}
	annotateRung(ctx, s)
	werr := results.WriteShard(r.dir, s)
	if werr == nil {
		r.removeLive(t.ID, log)
	} else {
		werr = fmt.Errorf("runner: trial %s: %w", t.ID, werr)
		s.Trial.Status = results.StatusFailed
		s.Trial.Error = werr.Error()
	}

	r.mu.Lock()
	if werr == nil {
		r.status[t.ID] = s.Trial.Status
	}
	r.progress.Running--
	r.progress.Done++
	switch s.Trial.Status {
	case results.StatusOK:
		r.progress.OK++
	case results.StatusDiverged:
		r.progress.Diverged++
	case results.StatusTimeout:
		r.progress.Timeout++
	case results.StatusCancelled:
		r.progress.Cancelled++
	case results.StatusStopped:
		r.progress.Stopped++
	default:
		r.progress.Failed++
	}
	r.emitLocked(Event{Type: EventTrialFinished, Trial: ref(t), Status: s.Trial.Status, Error: s.Trial.Error,
		Attempt: int(s.Trial.Attempts), Seconds: s.Trial.WallSeconds, Devices: devices})
	r.mu.Unlock()
	return werr
}

// outcome is how one attempt ended.
type outcome struct {
	status       string
	err          string
	divergedStep int
}

// trialContext is the context of one attempt: ctx with the trial's devices
// and, when timeout > 0, a deadline whose cause is errTimeout. The deadline
// covers the training and the after-trial analysis of the attempt. end
// releases it, with a cause when it stops the attempt (a divergence).
func (r *run) trialContext(ctx context.Context, devices []string, timeout time.Duration) (tctx context.Context, end context.CancelCauseFunc) {
	tctx, cancel := context.WithCancelCause(WithDevices(ctx, devices))
	if timeout <= 0 {
		return tctx, cancel
	}
	tctx, stop := context.WithTimeoutCause(tctx, timeout, errTimeout)
	return tctx, func(cause error) {
		cancel(cause)
		stop()
	}
}

// attempt runs the trainer once under tctx (see trialContext; cancel ends
// it) and classifies how it ended.
func (r *run) attempt(ctx, tctx context.Context, cancel context.CancelCauseFunc, t sweeps.Trial, dir string, rep *reporter, timeout time.Duration) outcome {
	rep.onDiverge = func(d *DivergedError) { cancel(d) }

	err := guarded(tctx, r.opts.Grace, "trainer ", func(p any, stack []byte) { rep.Log(fmt.Sprintf("panic: %v\n%s", p, stack)) },
		func() error { return r.trainer.Run(tctx, t, dir, rep) })
	rep.seal()
	var stopped *trainer.StoppedError
	if stop := trainer.StopAfter(tctx); err == nil && stop > 0 && stop < t.Train.Steps {
		// A trainer that does not honour StopAfter ran to the end: keep
		// what it reported up to the stop step, as if it had stopped there.
		rep.keepUpTo(stop, r.newRow(t))
		rep.Log(fmt.Sprintf("runner: the trainer ran past its stop step %d; kept its steps up to it", stop))
		err = &trainer.StoppedError{Step: stop}
	}
	if err == nil || errors.As(err, &stopped) {
		rep.checkSummary()
	}

	var de *DivergedError
	switch {
	case rep.diverged != nil:
		return outcome{status: results.StatusDiverged, err: rep.diverged.Error(), divergedStep: rep.diverged.Step}
	case errors.As(err, &de):
		return outcome{status: results.StatusDiverged, err: de.Error(), divergedStep: de.Step}
	case err == nil:
		return outcome{status: results.StatusOK}
	case stopped != nil:
		return outcome{status: results.StatusStopped}
	case ctx.Err() != nil:
		return outcome{status: results.StatusCancelled, err: "cancelled: " + context.Cause(ctx).Error()}
	case errors.Is(err, context.Canceled) && tctx.Err() == nil:
		// The trainer reports a cancellation of its own (not a timeout or a
		// divergence of this attempt, which end tctx): cancelled, not failed.
		return outcome{status: results.StatusCancelled, err: "cancelled: " + err.Error()}
	case errors.Is(context.Cause(tctx), errTimeout):
		return outcome{status: results.StatusTimeout, err: fmt.Sprintf("timed out after %s", timeout)}
	default:
		return outcome{status: results.StatusFailed, err: err.Error()}
	}
}

// afterTrial runs the AfterTrial hook on a trial that ended ok, under tctx,
// the context of its last attempt: the trial's one deadline covers the
// training and the analysis. It returns the shard to write: the hook's
// (it works on a copy), or s with the status and error of a hook that
// failed, was cancelled or timed out. A hook that does not return within
// the grace period after tctx ended is abandoned (its copy is dropped, so
// it cannot touch the shard being written) and the trial is recorded
// timeout or cancelled with its trained metrics.
func (r *run) afterTrial(ctx, tctx context.Context, t sweeps.Trial, dir string, artifacts map[string]string, s *results.Shard, timeout time.Duration, log *lineLog) *results.Shard {
	c := cloneShard(s)
	err := guarded(tctx, r.opts.Grace, "", func(p any, stack []byte) { log.printf("runner: after trial: panic: %v\n%s", p, stack) },
		func() error { return r.opts.AfterTrial(tctx, t, dir, artifacts, c) })
	if errors.Is(err, errAbandoned) {
		err = fmt.Errorf("%w (abandoned %s after its context ended: %v)", errAbandoned, r.opts.Grace, context.Cause(tctx))
	}
	if err == nil {
		return c
	}
	switch {
	case ctx.Err() != nil:
		// Ctrl-C during the analysis: the trial did not end, it was
		// stopped; a rerun resumes it like any cancelled trial.
		s.Trial.Status = results.StatusCancelled
		s.Trial.Error = "after trial: " + err.Error()
	case errors.Is(context.Cause(tctx), errTimeout):
		// Past the trial's deadline: timed out like a trainer that ran
		// too long; its trained metrics stay, a rerun runs it again.
		s.Trial.Status = results.StatusTimeout
		s.Trial.Error = fmt.Sprintf("timed out after %s, in the after-trial analysis: %v", timeout, err)
	case errors.Is(err, context.Canceled):
		s.Trial.Status = results.StatusCancelled
		s.Trial.Error = "after trial: " + err.Error()
	default:
		s.Trial.Status = results.StatusFailed
		s.Trial.Error = "after trial: " + err.Error()
	}
	log.printf("runner: after trial: %s %s", s.Trial.Status, err)
	return s
}

// guarded runs f in a goroutine and waits for it to return, or, once ctx
// has ended, at most grace longer: then it gives f up and returns
// errAbandoned (f runs on, its result unread). A panic in f is an error,
// "<what>panicked: <value>", its stack passed to logPanic.
func guarded(ctx context.Context, grace time.Duration, what string, logPanic func(p any, stack []byte), f func() error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				logPanic(p, debug.Stack())
				done <- fmt.Errorf("%spanicked: %v", what, p)
			}
		}()
		done <- f()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return errAbandoned
	}
}

// cloneShard copies s deeply enough that filling the copy (spectra, the
// spectra summary, extra metrics) leaves s as it was.
func cloneShard(s *results.Shard) *results.Shard {
	c := *s
	c.Trial.Extra = maps.Clone(s.Trial.Extra)
	c.Trial.Intruders = slices.Clone(s.Trial.Intruders)
	c.Steps = slices.Clone(s.Steps)
	c.Spectra = slices.Clone(s.Spectra)
	return &c
}

// sleep waits d or until ctx ends; it reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// reporter collects what a trainer reports into a shard. It is safe for
// concurrent use; once sealed (the attempt ended) it drops further reports,
// so a trainer that outlives its context cannot touch a written shard.
type reporter struct {
	mu        sync.Mutex
	sealed    bool
	row       results.TrialRow
	steps     []results.StepRow
	artifacts map[string]string
	maxStep   int
	stepsSet  bool // the trainer reported "steps" itself
	log       *lineLog
	summary   map[string]float64 // what the trainer reported as its summary
	initLoss  float64            // the first train loss reported
	lossSeen  bool

	diverged  *DivergedError
	onDiverge func(*DivergedError)
	events    func(Event) // trial_step and trial_phase events; nil drops them
	live      *liveSink   // the attempt's live step log (live.go); nil writes none
}

func newReporter(row results.TrialRow, log *lineLog) *reporter {
	return &reporter{row: row, log: log, artifacts: map[string]string{}, summary: map[string]float64{}}
}

// Step records a step metric. A non-finite "loss", or a "train" "loss"
// that exploded (trainer.Exploded: above trainer.DivergenceFactor times the
// first train loss reported, floored at 1), ends the trial as diverged at
// that step, whatever the trainer does next.
func (p *reporter) Step(step int, split, metric string, value float64) {
	p.mu.Lock()
	if p.sealed || p.diverged != nil {
		p.mu.Unlock()
		return
	}
	p.steps = append(p.steps, results.StepRow{TrialID: p.row.TrialID, Step: int64(step), Split: split, Metric: metric, Value: value})
	p.live.step(step, split, metric, value)
	p.maxStep = max(p.maxStep, step)
	var d *DivergedError
	switch {
	case metric != "loss":
	case math.IsNaN(value) || math.IsInf(value, 0):
		d = &DivergedError{Step: step, Tensor: split + " loss"}
	case split != "train":
	case !p.lossSeen:
		p.initLoss, p.lossSeen = value, true
	case trainer.Exploded(p.initLoss, value):
		d = &DivergedError{Step: step, Reason: fmt.Sprintf("train loss %.4g exceeds %d × the initial train loss %.4g (floored at 1)",
			value, trainer.DivergenceFactor, p.initLoss)}
	}
	if d != nil {
		p.diverged = d
	}
	on := p.onDiverge
	p.mu.Unlock()
	p.stepEvent(step, split, metric, value)
	if d != nil {
		p.log.printf("runner: %s", d)
		if on != nil {
			on(d)
		}
	}
}

// Summary records a final metric.
func (p *reporter) Summary(name string, value float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sealed {
		return
	}
	if name == "steps" {
		p.stepsSet = true
	}
	p.summary[name] = value
	p.row.SetMetric(name, value)
}

// checkSummary applies the divergence rule to the summary of a trainer
// that ended without an error: a NaN or Inf summary metric (the first by
// name), or a target_loss that exploded against the target_loss_before the
// trainer reported (trainer.Exploded), makes the trial diverged at its last
// step. Call after seal.
func (p *reporter) checkSummary() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.diverged != nil {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(p.summary)) {
		if v := p.summary[name]; math.IsNaN(v) || math.IsInf(v, 0) {
			p.diverged = &DivergedError{Step: p.maxStep, Tensor: "summary metric " + name}
			break
		}
	}
	after, ok1 := p.summary["target_loss"]
	before, ok2 := p.summary["target_loss_before"]
	if p.diverged == nil && ok1 && ok2 && trainer.Exploded(before, after) {
		p.diverged = &DivergedError{Step: p.maxStep, Reason: fmt.Sprintf("target_loss %.4g exceeds %d × target_loss_before %.4g (floored at 1)",
			after, trainer.DivergenceFactor, before)}
	}
	if p.diverged != nil {
		p.log.printf("runner: %s", p.diverged)
	}
}

// Artifact records a file the trainer wrote.
func (p *reporter) Artifact(name, path string) {
	p.mu.Lock()
	if p.sealed {
		p.mu.Unlock()
		return
	}
	p.artifacts[name] = path
	p.mu.Unlock()
	p.log.printf("artifact %s: %s", name, path)
}

// Log records a line in the trial's log.
func (p *reporter) Log(msg string) {
	p.mu.Lock()
	sealed := p.sealed
	p.mu.Unlock()
	if !sealed {
		p.log.printf("%s", msg)
	}
}

func (p *reporter) seal() {
	p.mu.Lock()
	p.sealed = true
	p.mu.Unlock()
}

// keepUpTo drops what a trainer reported after step n (step rows and every
// summary metric, reported at its end) and resets the row to fresh, keeping
// its attempt count. Call after seal.
func (p *reporter) keepUpTo(n int, fresh results.TrialRow) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.steps = slices.DeleteFunc(p.steps, func(s results.StepRow) bool { return s.Step > int64(n) })
	fresh.Attempts = p.row.Attempts
	p.row = fresh
	p.summary = map[string]float64{}
	p.stepsSet = false
	p.maxStep = 0
	for _, s := range p.steps {
		p.maxStep = max(p.maxStep, int(s.Step))
	}
}

// shard returns the collected shard; call after seal.
func (p *reporter) shard() *results.Shard {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &results.Shard{Trial: p.row, Steps: p.steps}
	if !p.stepsSet {
		s.Trial.Steps = int64(p.maxStep)
	}
	return s
}

func (p *reporter) artifactsCopy() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]string, len(p.artifacts))
	for k, v := range p.artifacts {
		m[k] = v
	}
	return m
}

// lineLog writes whole lines to a trial's log, one writer at a time.
type lineLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineLog) printf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	l.mu.Lock()
	io.WriteString(l.w, s)
	l.mu.Unlock()
}
