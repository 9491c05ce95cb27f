package results

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Manifest is manifest.json: what was run, from which source, where and
// when. It carries the run's times so the tables need not.
type Manifest struct {
	Sweep       string `json:"sweep"`
	Description string `json:"description,omitempty"`
	// SweepFile is the path the sweep was read from; SweepSource its
	// frozen text, SourceHash a hash of that text.
	SweepFile   string `json:"sweep_file"`
	SweepSource string `json:"sweep_source"`
	SourceHash  string `json:"source_hash"`
	// Trials is the resolved plan's trials, as the planner encodes them.
	Trials json.RawMessage `json:"trials,omitempty"`

	GitCommit      string `json:"git_commit,omitempty"`
	GoVersion      string `json:"go_version,omitempty"`
	Host           string `json:"host,omitempty"`
	HarnessVersion string `json:"harness_version,omitempty"`

	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
}

// WriteManifest writes sweepDir/manifest.json atomically, creating
// sweepDir if needed.
func WriteManifest(sweepDir string, m *Manifest) error {
	if err := os.MkdirAll(sweepDir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("results: manifest: %w", err)
	}
	return writeFileAtomic(filepath.Join(sweepDir, ManifestFile), append(data, '\n'))
}

// ReadManifest reads sweepDir/manifest.json.
func ReadManifest(sweepDir string) (*Manifest, error) {
	path := filepath.Join(sweepDir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	m := new(Manifest)
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("results: %s: %w", path, err)
	}
	return m, nil
}
