package runner

import (
	"time"

	"peftbench/results"
	"peftbench/sweeps"
	"peftbench/trainer"
)

// etaEstimator estimates the time a sweep has left from the trials that
// ended ok in this run, per task and method, rather than from the mean of
// all trials: the first trials of a sweep are often one task's, and a task's
// first trial pretrains its base model, so an overall mean is wildly off
// early. A trial's training time is counted from its base model being
// ready (trainer.PhaseTrain) when the trainer says so, else from its start;
// divided by its steps, it is a rate in seconds per step. A trial left to
// run costs its steps times the rate of its (task, method), else of its
// task; a running one, that less the time it has trained. The ETA is the
// sum over the workers, and at least the longest running trial's time
// left. It is unknown while any task left to run has no trial that ended
// ok.
//
// It is fed every event of the run (observe), under the run's lock.
type etaEstimator struct {
	workers int
	trials  map[string]sweeps.Trial // left to run or running, by ID
	waiting map[etaKey]int          // steps of the trials not started, by (task, method)
	running map[string]time.Time    // ID → when its training began
	slot    map[etaKey]*etaRate     // ok trials' training, by (task, method)
	task    map[string]*etaRate     // … by task
}

type etaKey struct{ task, method string }

type etaRate struct{ seconds, steps float64 }

// newETA returns an estimator for the trials left to run, on workers
// concurrent workers.
func newETA(left []sweeps.Trial, workers int) *etaEstimator {
	e := &etaEstimator{
		workers: max(workers, 1),
		trials:  map[string]sweeps.Trial{},
		waiting: map[etaKey]int{},
		running: map[string]time.Time{},
		slot:    map[etaKey]*etaRate{},
		task:    map[string]*etaRate{},
	}
	for _, t := range left {
		e.trials[t.ID] = t
		e.waiting[key(t)] += trialSteps(t)
	}
	return e
}

func key(t sweeps.Trial) etaKey { return etaKey{t.Task, t.Method} }

func trialSteps(t sweeps.Trial) int { return max(t.Train.Steps, 1) }

// observe updates the estimator with one event.
func (e *etaEstimator) observe(ev Event) {
	if ev.Trial == nil {
		return
	}
	t, ok := e.trials[ev.Trial.ID]
	if !ok {
		return
	}
	switch ev.Type {
	case EventTrialStarted:
		if _, ok := e.running[t.ID]; !ok {
			e.waiting[key(t)] -= trialSteps(t)
		}
		e.running[t.ID] = ev.Time
	case EventTrialPhase:
		if ev.Phase == trainer.PhaseTrain {
			if _, ok := e.running[t.ID]; ok {
				e.running[t.ID] = ev.Time
			}
		}
	case EventTrialFinished:
		began, ok := e.running[t.ID]
		if ok {
			delete(e.running, t.ID)
		} else {
			e.waiting[key(t)] -= trialSteps(t)
			began = ev.Time.Add(-time.Duration(ev.Seconds * float64(time.Second)))
		}
		delete(e.trials, t.ID)
		if ev.Status != results.StatusOK {
			return // a failure's time says nothing of a trial's
		}
		secs, steps := ev.Time.Sub(began).Seconds(), float64(trialSteps(t))
		for _, r := range []*etaRate{rateOf(e.slot, key(t)), rateOf(e.task, t.Task)} {
			r.seconds += secs
			r.steps += steps
		}
	}
}

// rateOf returns m's rate of k, added when absent.
func rateOf[K comparable](m map[K]*etaRate, k K) *etaRate {
	r := m[k]
	if r == nil {
		r = &etaRate{}
		m[k] = r
	}
	return r
}

// perStep is the seconds per step of trials of k: its (task, method)'s
// rate, else its task's; false when no trial of the task ended ok.
func (e *etaEstimator) perStep(k etaKey) (float64, bool) {
	if r := e.slot[k]; r != nil && r.steps > 0 {
		return r.seconds / r.steps, true
	}
	if r := e.task[k.task]; r != nil && r.steps > 0 {
		return r.seconds / r.steps, true
	}
	return 0, false
}

// estimate returns the time left at now, and false when unknown.
func (e *etaEstimator) estimate(now time.Time) (time.Duration, bool) {
	var total, longest float64
	for k, steps := range e.waiting {
		if steps <= 0 {
			continue
		}
		rate, ok := e.perStep(k)
		if !ok {
			return 0, false
		}
		total += rate * float64(steps)
	}
	for id, began := range e.running {
		t := e.trials[id]
		rate, ok := e.perStep(key(t))
		if !ok {
			return 0, false
		}
		left := max(rate*float64(trialSteps(t))-now.Sub(began).Seconds(), 0)
		total += left
		longest = max(longest, left)
	}
	secs := max(total/float64(e.workers), longest)
	return time.Duration(secs * float64(time.Second)), true
}
