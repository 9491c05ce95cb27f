package results

import (
	"encoding/json"
	"errors"
	"time"
)

// Trial statuses, as written in the status column of trials.parquet.
const (
	StatusOK        = "ok"
	StatusFailed    = "failed"
	StatusDiverged  = "diverged"
	StatusTimeout   = "timeout"
	StatusCancelled = "cancelled"
)

// TrialRow is one row of trials.parquet: one trial's identity, outcome and
// final metrics. Metrics a task does not report are NaN and written as null.
type TrialRow struct {
	Sweep, TrialID, Method, Task string
	Rank, Seed, Index            int64
	// Config is the canonical JSON of the resolved trial.
	Config string
	// Status is one of StatusOK, StatusFailed, StatusDiverged,
	// StatusTimeout, StatusCancelled.
	Status       string
	Error        string
	Attempts     int64
	DivergedStep int64

	TrainableParams, TotalParams int64
	Steps                        int64
	WallSeconds                  float64
	PeakMemBytes                 int64

	// Final metrics; NaN (written as null) when a task does not report one.
	TargetLoss, TargetMetric              float64
	RetainLossBefore, RetainLossAfter     float64
	RetainMetricBefore, RetainMetricAfter float64
	Forgetting                            float64

	// Spectra summary, filled by analysis; empty/NaN until then.
	Intruders     []IntruderCount // per epsilon, summed over targeted matrices
	EffectiveRank float64
	EnergyRank90  float64

	// Extra holds task-specific metrics (e.g. refusal_retention).
	Extra map[string]float64

	StartedAt, EndedAt time.Time
	Host               string
}

// IntruderCount is the number of intruder dimensions at one threshold ε.
type IntruderCount struct {
	Epsilon float64
	Count   int64
}

// SetMetric sets a well-known metric by its column name, else Extra[name].
func (r *TrialRow) SetMetric(name string, v float64) {
	if r.Extra == nil {
		r.Extra = map[string]float64{}
	}
	r.Extra[name] = v
}

// StepRow is one row of steps.parquet: one metric at one step.
type StepRow struct {
	TrialID       string
	Step          int64
	Split, Metric string
	Value         float64
}

// SpectrumRow is one row of spectra.parquet: one singular direction of one
// targeted matrix.
type SpectrumRow struct {
	TrialID, Layer                string
	Index                         int64
	SigmaBase, SigmaTuned, MaxCos float64
	// Intruder holds one flag per epsilon, in the sweep's epsilon order.
	Intruder []bool
}

// Shard is everything one trial produced.
type Shard struct {
	Trial   TrialRow
	Steps   []StepRow
	Spectra []SpectrumRow
}

// Manifest is manifest.json: what was run, from which source, where and when.
type Manifest struct {
	Sweep, Description, SweepFile, SweepSource, SourceHash string
	Trials                                                 json.RawMessage
	GitCommit, GoVersion, Host, HarnessVersion             string
	Started, Ended                                         time.Time
}

var errTODO = errors.New("results: not implemented yet")

// WriteShard writes the trial's shard under sweepDir/trials/<id>/ atomically.
func WriteShard(sweepDir string, s *Shard) error { return errTODO }

// ReadShards reads every complete shard under sweepDir, keyed by trial ID.
func ReadShards(sweepDir string) (map[string]*Shard, error) { return nil, errTODO }

// Compact merges the shards into trials.parquet, steps.parquet and
// spectra.parquet.
func Compact(sweepDir string) error { return errTODO }

// WriteManifest writes sweepDir/manifest.json atomically.
func WriteManifest(sweepDir string, m *Manifest) error { return errTODO }

// ReadManifest reads sweepDir/manifest.json.
func ReadManifest(sweepDir string) (*Manifest, error) { return nil, errTODO }

// ReadTrials reads a trials table.
func ReadTrials(path string) ([]TrialRow, error) { return nil, errTODO }

// ReadSteps reads a steps table.
func ReadSteps(path string) ([]StepRow, error) { return nil, errTODO }

// ReadSpectra reads a spectra table.
func ReadSpectra(path string) ([]SpectrumRow, error) { return nil, errTODO }
