package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"peftbench/sweeps"
)

// Event types, in the order a sweep emits them.
const (
	EventSweepStarted  = "sweep_started"
	EventTrialStarted  = "trial_started"
	EventTrialRetry    = "trial_retry" // a failed trial waits Seconds, then runs attempt Attempt
	EventTrialPhase    = "trial_phase" // the trial entered Phase (trainer.PhaseBase, trainer.PhaseTrain)
	EventTrialStep     = "trial_step"  // the trial reported Metric
	EventTrialFinished = "trial_finished"
	EventSweepFinished = "sweep_finished"
)

// Event is one step of a sweep's progress. Run hands events to
// Options.Events one at a time; NewJSON, NewBar and NewLines render them.
// docs/events.md documents them as `bench run --json` prints them.
type Event struct {
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Sweep   string    `json:"sweep"`
	Dir     string    `json:"dir,omitempty"`     // sweep events: the results folder
	Workers int       `json:"workers,omitempty"` // sweep_started
	Threads int       `json:"threads,omitempty"` // sweep_started: CPU threads per trial
	Trial   *TrialRef `json:"trial,omitempty"`   // trial events
	Status  string    `json:"status,omitempty"`  // trial_finished
	Error   string    `json:"error,omitempty"`   // trial_finished, trial_retry
	Attempt int       `json:"attempt,omitempty"`
	Seconds float64   `json:"seconds,omitempty"` // trial_finished: wall time; trial_retry: backoff
	Devices []string  `json:"devices,omitempty"` // GPU devices held by the trial
	Phase   string    `json:"phase,omitempty"`   // trial_phase
	Metric  *Metric   `json:"metric,omitempty"`  // trial_step
	// ETA is the estimated seconds left (etaEstimator), on every event but
	// trial_step; nil while unknown: until a trial of every task left to
	// run has ended ok, or when the runner does not know which trials are
	// left (bench status following a detached sweep).
	ETA      *float64 `json:"eta_seconds,omitempty"`
	Progress Progress `json:"progress"` // counts after this event
}

// Metric is one step metric a trainer reported (Reporter.Step). Events
// carry every one but the train split's other than "loss" (gradient norm,
// learning rate: those are in steps.parquet): the train loss at the
// trainer's log points and every evaluation.
type Metric struct {
	Step   int     `json:"step"`
	Split  string  `json:"split"`
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
}

// TrialRef names a trial in events.
type TrialRef struct {
	ID     string `json:"trial_id"`
	Index  int    `json:"index"`
	Method string `json:"method"`
	Rank   int    `json:"rank"`
	Task   string `json:"task"`
	Seed   int64  `json:"seed"`
	Steps  int    `json:"steps"` // the trial's train.steps
	// Label names the trial apart from the others of its sweep: method,
	// rank, task, the settings the sweep varies (sweeps.Swept: lr, α, …)
	// and seed, e.g. "lora r=8 mnist-split lr=1e-3 α=16 seed=1".
	Label string `json:"label"`
}

func ref(t sweeps.Trial) *TrialRef {
	return &TrialRef{ID: t.ID, Index: t.Index, Method: t.Method, Rank: t.Rank, Task: t.Task, Seed: t.Seed, Steps: t.Train.Steps}
}

func (t *TrialRef) String() string {
	if t.Label != "" {
		return t.Label
	}
	if t.Rank > 0 {
		return fmt.Sprintf("%s r=%d %s seed=%d", t.Method, t.Rank, t.Task, t.Seed)
	}
	return fmt.Sprintf("%s %s seed=%d", t.Method, t.Task, t.Seed)
}

// Progress counts a sweep's trials. Total = Skipped + Done + Running + the
// trials not started yet; Done = OK + Failed + Diverged + Timeout + Cancelled
// + Stopped. Under [early_stopping] it counts runs (a promoted trial runs
// once per rung) and Total grows as rungs are scheduled.
type Progress struct {
	Total     int `json:"total"`
	Skipped   int `json:"skipped"` // finished in an earlier run
	Done      int `json:"done"`    // ended in this run
	Running   int `json:"running"`
	OK        int `json:"ok"`
	Failed    int `json:"failed"`
	Diverged  int `json:"diverged"`
	Timeout   int `json:"timeout"`
	Cancelled int `json:"cancelled"`
	Stopped   int `json:"stopped"` // ran to an early-stopping rung
}

// NewJSON returns an event sink writing one JSON object per line to w.
func NewJSON(w io.Writer) func(Event) {
	enc := json.NewEncoder(w)
	return func(ev Event) { enc.Encode(ev) }
}

// NewLines returns an event sink writing one plain line per trial end (and
// per retry) to w, for logs and pipes.
func NewLines(w io.Writer) func(Event) {
	return func(ev Event) {
		p := ev.Progress
		switch ev.Type {
		case EventSweepStarted:
			fmt.Fprintf(w, "sweep %s: %d trials, %d done before, %d workers × %d threads → %s\n",
				ev.Sweep, p.Total, p.Skipped, ev.Workers, ev.Threads, ev.Dir)
		case EventTrialRetry:
			fmt.Fprintf(w, "retry  %s %s (attempt %d in %s): %s\n", ev.Trial.ID, ev.Trial, ev.Attempt, seconds(ev.Seconds), ev.Error)
		case EventTrialFinished:
			line := fmt.Sprintf("[%d/%d] %-9s %s %s (%s)", p.Skipped+p.Done, p.Total, ev.Status, ev.Trial.ID, ev.Trial, seconds(ev.Seconds))
			if ev.Error != "" {
				line += ": " + firstLine(ev.Error)
			}
			fmt.Fprintln(w, line)
		case EventSweepFinished:
			fmt.Fprintf(w, "sweep %s: %s\n", ev.Sweep, counts(p))
		}
	}
}

func counts(p Progress) string {
	s := fmt.Sprintf("%d ok, %d failed, %d diverged, %d timeout", p.OK, p.Failed, p.Diverged, p.Timeout)
	if p.Cancelled > 0 {
		s += fmt.Sprintf(", %d cancelled", p.Cancelled)
	}
	if p.Skipped > 0 {
		s += fmt.Sprintf(", %d done before", p.Skipped)
	}
	if left := p.Total - p.Skipped - p.Done; left > 0 {
		s += fmt.Sprintf(", %d not run", left)
	}
	return s
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
