package runner

import (
	"peftbench/sweeps"
)

// tracker adds to a run's events what the runner knows beyond counts: each
// trial's label (sweeps.Plan.Labels) and the ETA (etaEstimator). It is
// used under the run's lock.
type tracker struct {
	labels map[string]string
	// left are the trials this run may run, set before sweep_started; nil
	// when unknown (following a detached sweep), which leaves the ETA
	// unknown.
	left []sweeps.Trial
	eta  *etaEstimator
}

// decorate labels ev's trial, feeds ev to the estimator and stamps it with
// the ETA.
func (k *tracker) decorate(plan *sweeps.Plan, ev *Event) {
	if ev.Trial != nil {
		if k.labels == nil {
			k.labels = plan.Labels()
		}
		ev.Trial.Label = k.labels[ev.Trial.ID]
	}
	if ev.Type == EventSweepStarted && k.left != nil {
		k.eta = newETA(k.left, ev.Workers)
	}
	if k.eta == nil {
		return
	}
	k.eta.observe(*ev)
	if ev.Type == EventTrialStep {
		return
	}
	if d, ok := k.eta.estimate(ev.Time); ok {
		s := d.Seconds()
		ev.ETA = &s
	}
}

// stepEvent emits a trial_step event for a step metric the reporter kept,
// but for the train split's metrics other than "loss" (gradient norm,
// learning rate), which would double the events and are in steps.parquet.
func (p *reporter) stepEvent(step int, split, metric string, value float64) {
	if p.events == nil || (split == "train" && metric != "loss") {
		return
	}
	p.events(Event{Type: EventTrialStep, Metric: &Metric{Step: step, Split: split, Metric: metric, Value: value}})
}

// Phase emits a trial_phase event (trainer.PhaseReporter): the builtin
// trainer reports waiting for its base model and training.
func (p *reporter) Phase(name string) {
	p.mu.Lock()
	sealed := p.sealed
	p.mu.Unlock()
	if !sealed && p.events != nil {
		p.events(Event{Type: EventTrialPhase, Phase: name})
	}
}
