package runner

import "peftbench/trainer"

// The trainer contract lives in package trainer; these aliases keep the
// runner's names for it.
type (
	// Trainer trains one trial; see trainer.Trainer.
	Trainer = trainer.Trainer
	// Reporter receives what a trainer measures; see trainer.Reporter.
	Reporter = trainer.Reporter
	// DivergedError ends a trial that diverged; see trainer.DivergedError.
	DivergedError = trainer.DivergedError
)
