package trainer

// Phases a trainer may report through a PhaseReporter.
const (
	// PhaseBase: the trial waits for its base model (read from the cache,
	// pretrained by this trial, or pretrained by another trial it waits on).
	PhaseBase = "base"
	// PhaseTrain: the base model is ready; the trial sets up and trains.
	PhaseTrain = "train"
)

// PhaseReporter is a Reporter that also hears what the trial is doing, so
// that progress can show trials waiting on base-model pretraining and time
// training apart from that wait. It is optional: trainers call
// ReportPhase, which does nothing for a Reporter without it.
type PhaseReporter interface {
	Phase(name string)
}

// ReportPhase tells r the trial entered phase (PhaseBase, PhaseTrain) when
// r is a PhaseReporter.
func ReportPhase(r Reporter, phase string) {
	if p, ok := r.(PhaseReporter); ok {
		p.Phase(phase)
	}
}
