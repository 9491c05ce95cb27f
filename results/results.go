package results

import (
	"math"
	"time"
)

// Trial statuses, as written in the status column of trials.parquet.
const (
	StatusOK        = "ok"
	StatusFailed    = "failed"
	StatusDiverged  = "diverged"
	StatusTimeout   = "timeout"
	StatusCancelled = "cancelled"
	// StatusStopped is a trial an early-stopping scheduler (successive
	// halving) did not promote: it ran to a rung and its metrics are the
	// rung's. Not a failure; never retried.
	StatusStopped = "stopped"
)

// TrialRow is one row of trials.parquet: one trial's identity, outcome and
// final metrics. Metrics a task does not report are NaN and written as null.
type TrialRow struct {
	Sweep, TrialID, Method, Task string
	// Rank is the adapter rank; 0 for methods without one, written as null.
	Rank, Seed, Index int64
	// Config is the canonical JSON of the resolved trial.
	Config string
	// Phase is the trial's Config key "phase" ("search" or "test" under a
	// tune protocol; "" for a plain sweep, written as null). It is derived:
	// writers set Config, and reads fill Phase.
	Phase string
	// Params are the trial's hyperparameters as typed values, one per flat
	// column of trials.parquet (lr, alpha, task_hidden, …; see doc.go):
	// int64, float64, string or bool; lists are their JSON text. A trial
	// without an option has no key. They are derived from Config: writers
	// set Config, and reads fill Params (from trials.parquet's columns, or
	// from Config for files written before the columns existed and for
	// shards, typed from that one trial).
	Params map[string]any
	// Status is one of StatusOK, StatusFailed, StatusDiverged,
	// StatusTimeout, StatusCancelled, StatusStopped.
	Status string
	// Error is why the trial is not ok; "" (written as null) when it is.
	Error        string
	Attempts     int64
	DivergedStep int64

	TrainableParams, TotalParams int64
	Steps                        int64
	WallSeconds                  float64
	PeakMemBytes                 int64

	// Efficiency, reported by the trainer; NaN (written as null) when
	// not measured. The byte counts are integral and written as int64.
	TrainSeconds                       float64
	ExamplesPerS, TokensPerS           float64
	MsPerStep                          float64
	OptimizerStateBytes, AdapterBytes  float64
	ForwardMsUnmerged, ForwardMsMerged float64
	MergeError                         float64

	// Final metrics; NaN (written as null) when a task does not report one.
	TargetLoss, TargetMetric float64
	// TargetMetricName names the metric behind TargetMetric (and
	// ValMetric), e.g. "accuracy"; "" (written as null) when the trainer
	// does not say (external trainers).
	TargetMetricName                      string
	ValLoss, ValMetric                    float64
	RetainLossBefore, RetainLossAfter     float64
	RetainMetricBefore, RetainMetricAfter float64
	Forgetting                            float64

	// Spectra summary, filled by analysis; empty/NaN until then.
	Intruders     []IntruderCount // per epsilon, summed over targeted matrices
	EffectiveRank float64
	EnergyRank90  float64

	// MitigateLambda is the lambda of the intruder mitigation the trial's
	// model had before evaluation ([analysis] mitigate_intruders); NaN
	// (written as null) for a plain trial.
	MitigateLambda float64

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

// SetMetric sets a well-known metric by its trials.parquet column name
// (target_loss, target_metric, val_loss, val_metric, retain_loss_before,
// retain_loss_after, retain_metric_before, retain_metric_after,
// forgetting, trainable_params, total_params, steps, peak_mem_bytes,
// train_seconds, examples_per_s, tokens_per_s, ms_per_step,
// optimizer_state_bytes, adapter_bytes, forward_ms_unmerged,
// forward_ms_merged, merge_error, effective_rank, energy_rank_90); any
// other name lands in Extra. Integer columns take v truncated.
func (r *TrialRow) SetMetric(name string, v float64) {
	switch name {
	case "val_loss":
		r.ValLoss = v
	case "val_metric":
		r.ValMetric = v
	case "train_seconds":
		r.TrainSeconds = v
	case "examples_per_s":
		r.ExamplesPerS = v
	case "tokens_per_s":
		r.TokensPerS = v
	case "ms_per_step":
		r.MsPerStep = v
	case "optimizer_state_bytes":
		r.OptimizerStateBytes = v
	case "adapter_bytes":
		r.AdapterBytes = v
	case "forward_ms_unmerged":
		r.ForwardMsUnmerged = v
	case "forward_ms_merged":
		r.ForwardMsMerged = v
	case "merge_error":
		r.MergeError = v
	case "target_loss":
		r.TargetLoss = v
	case "target_metric":
		r.TargetMetric = v
	case "retain_loss_before":
		r.RetainLossBefore = v
	case "retain_loss_after":
		r.RetainLossAfter = v
	case "retain_metric_before":
		r.RetainMetricBefore = v
	case "retain_metric_after":
		r.RetainMetricAfter = v
	case "forgetting":
		r.Forgetting = v
	case "trainable_params":
		r.TrainableParams = int64(v)
	case "total_params":
		r.TotalParams = int64(v)
	case "steps":
		r.Steps = int64(v)
	case "peak_mem_bytes":
		r.PeakMemBytes = int64(v)
	case "effective_rank":
		r.EffectiveRank = v
	case "energy_rank_90":
		r.EnergyRank90 = v
	default:
		if r.Extra == nil {
			r.Extra = map[string]float64{}
		}
		r.Extra[name] = v
	}
}

// ClearMetrics sets every final, validation and efficiency metric and the
// spectra summary to NaN (absent), the state of a trial that has reported nothing yet. A zero
// TrialRow instead reports metrics of 0.
func (r *TrialRow) ClearMetrics() {
	nan := math.NaN()
	r.TargetLoss, r.TargetMetric = nan, nan
	r.RetainLossBefore, r.RetainLossAfter = nan, nan
	r.RetainMetricBefore, r.RetainMetricAfter = nan, nan
	r.Forgetting = nan
	r.EffectiveRank, r.EnergyRank90 = nan, nan
	r.ValLoss, r.ValMetric = nan, nan
	r.TrainSeconds, r.ExamplesPerS, r.TokensPerS, r.MsPerStep = nan, nan, nan, nan
	r.OptimizerStateBytes, r.AdapterBytes = nan, nan
	r.ForwardMsUnmerged, r.ForwardMsMerged, r.MergeError = nan, nan, nan
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
