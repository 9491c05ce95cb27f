package results

import (
	"bytes"
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
	return writeFileAtomic(filepath.Join(sweepDir, ManifestFile), sealManifest(data))
}

// The manifest's last field is "checksum": the SHA-256 of the manifest's
// bytes without that field, so any change to the file is detected on read.
// A manifest without one (written before it existed, or by hand) is read
// unchecked.
const manifestSumKey = `,
  "checksum": "`

// sealManifest appends the checksum field to data, an indented JSON object.
func sealManifest(data []byte) []byte {
	body := data[:len(data)-len("\n}")]
	return fmt.Appendf(nil, "%s%s%s\"\n}\n", body, manifestSumKey, sum(data))
}

// checkManifest verifies data, the bytes of the manifest at path, against
// its checksum field, if it has one.
func checkManifest(path string, data []byte) error {
	var sealed struct {
		Checksum *string `json:"checksum"`
	}
	if err := json.Unmarshal(data, &sealed); err != nil || sealed.Checksum == nil {
		return nil // the full decode reports bad JSON
	}
	want := *sealed.Checksum
	tail := manifestSumKey + want + "\"\n}\n"
	if !bytes.HasSuffix(data, []byte(tail)) ||
		sum(append(data[:len(data)-len(tail):len(data)-len(tail)], "\n}"...)) != want {
		return fmt.Errorf("results: %s is %w: its content does not match its checksum (edited or corrupted); "+
			"delete it and rerun the sweep to write it again (finished trials are kept)", path, ErrDamaged)
	}
	return nil
}

// ReadManifest reads sweepDir/manifest.json.
func ReadManifest(sweepDir string) (*Manifest, error) {
	path := filepath.Join(sweepDir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	if err := checkManifest(path, data); err != nil {
		return nil, err
	}
	m := new(Manifest)
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("results: %s: %w", path, err)
	}
	return m, nil
}
