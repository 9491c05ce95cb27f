package trainer

import (
	"encoding/json"
	"fmt"
	"os"

	"peftbench/sweeps"
)

// Protocol is the version of the external trainer protocol
// (docs/trainer-protocol.md): $PEFTBENCH_PROTOCOL and the trial file's
// "protocol". Additions an older trainer can ignore keep it; anything else
// bumps it.
const Protocol = 1

// TrialFile is the trial file of the external trainer protocol: the JSON
// file at $PEFTBENCH_TRIAL that a command trainer reads.
type TrialFile struct {
	Protocol int          `json:"protocol"`
	Trial    sweeps.Trial `json:"trial"`
	Threads  int          `json:"threads"`
	Devices  []string     `json:"devices"`
	Out      string       `json:"out"`
	// StopAfter, when > 0, asks the trainer to stop after that step (an
	// early-stopping scheduler's rung; see WithStopAfter); a trainer may
	// ignore it. Omitted when 0, so older trainers read the file as before.
	StopAfter int `json:"stop_after,omitempty"`
}

// WriteTrialFile writes tf at path, indented, ending in a newline.
func WriteTrialFile(path string, tf TrialFile) error {
	b, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding trial: %w", err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadTrialFile reads a trial file and checks it: protocol Protocol, a
// trial with a method and a task.
func ReadTrialFile(path string) (*TrialFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	var tf TrialFile
	if err := json.Unmarshal(b, &tf); err != nil {
		return nil, fmt.Errorf("trainer: %s: %w", path, err)
	}
	if tf.Protocol != Protocol {
		return nil, fmt.Errorf("trainer: %s: protocol %d, want %d", path, tf.Protocol, Protocol)
	}
	if tf.Trial.Method == "" || tf.Trial.Task == "" {
		return nil, fmt.Errorf("trainer: %s: no trial method or task", path)
	}
	return &tf, nil
}
