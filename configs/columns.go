package configs

import (
	"fmt"
	"math"

	"peftbench/results"
)

// Column is a per-trial number of trials.parquet: a column or a key of its
// extra map.
type Column struct {
	Name   string // trials.parquet column, or the extra key
	Label  string // axis label, with unit
	Short  string // table header
	Higher bool   // higher is better
	// Known is whether the direction (Higher) is known; a change of a
	// column of unknown direction is a change, not a regression.
	Known bool
	get   func(*results.TrialRow) float64
}

// Value returns the column of t; NaN when t does not report it. A name
// that is not a fixed column is read from the extra map, else from the
// numeric hyperparameters (Params: lr, alpha, …).
func (c Column) Value(t *results.TrialRow) float64 {
	if c.get != nil {
		return c.get(t)
	}
	if v, ok := t.Extra[c.Name]; ok {
		return v
	}
	switch v := t.Params[c.Name].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return math.NaN()
}

func col(name, label, short string, higher bool, get func(*results.TrialRow) float64) Column {
	return Column{Name: name, Label: label, Short: short, Higher: higher, Known: true, get: get}
}

// The columns of trials.parquet and the known extra metrics.
var (
	TrainableParams = col("trainable_params", "trainable parameters", "params", false,
		func(t *results.TrialRow) float64 { return float64(t.TrainableParams) })
	TotalParams = col("total_params", "total parameters", "total params", false,
		func(t *results.TrialRow) float64 { return float64(t.TotalParams) })
	Steps = col("steps", "optimizer steps", "steps", false,
		func(t *results.TrialRow) float64 { return float64(t.Steps) })
	// Rank is NaN for a method without one (rank 0, null on disk).
	Rank = col("rank", "rank r", "rank", false,
		func(t *results.TrialRow) float64 {
			if t.Rank == 0 {
				return math.NaN()
			}
			return float64(t.Rank)
		})
	TargetLoss = col("target_loss", "target loss (nats)", "target loss", false,
		func(t *results.TrialRow) float64 { return t.TargetLoss })
	TargetMetric = col("target_metric", "target accuracy", "target metric", true,
		func(t *results.TrialRow) float64 { return t.TargetMetric })
	RetainLossBefore = col("retain_loss_before", "retain loss before (nats)", "retain loss before", false,
		func(t *results.TrialRow) float64 { return t.RetainLossBefore })
	RetainLossAfter = col("retain_loss_after", "retain loss after (nats)", "retain loss after", false,
		func(t *results.TrialRow) float64 { return t.RetainLossAfter })
	RetainMetricBefore = col("retain_metric_before", "retain accuracy before", "retain before", true,
		func(t *results.TrialRow) float64 { return t.RetainMetricBefore })
	RetainMetricAfter = col("retain_metric_after", "retain accuracy after", "retain after", true,
		func(t *results.TrialRow) float64 { return t.RetainMetricAfter })
	Forgetting = col("forgetting", "forgetting: KL(base ‖ tuned) on retain (nats)", "forgetting", false,
		func(t *results.TrialRow) float64 { return t.Forgetting })
	EffectiveRank = col("effective_rank", "effective rank of ΔW", "eff rank", false,
		func(t *results.TrialRow) float64 { return t.EffectiveRank })
	EnergyRank90 = col("energy_rank_90", "90% energy rank of ΔW", "energy90", false,
		func(t *results.TrialRow) float64 { return t.EnergyRank90 })
	WallSeconds = col("wall_seconds", "wall time (s)", "wall s", false,
		func(t *results.TrialRow) float64 { return t.WallSeconds })
	PeakMemBytes = col("peak_mem_bytes", "peak memory (bytes)", "peak mem", false,
		func(t *results.TrialRow) float64 {
			if t.PeakMemBytes == 0 {
				return math.NaN() // not measured
			}
			return float64(t.PeakMemBytes)
		})
	ValLoss = col("val_loss", "validation loss (nats)", "val loss", false,
		func(t *results.TrialRow) float64 { return t.ValLoss })
	ValMetric = col("val_metric", "validation accuracy", "val metric", true,
		func(t *results.TrialRow) float64 { return t.ValMetric })
	TrainSeconds = col("train_seconds", "training time without the base model (s)", "train s", false,
		func(t *results.TrialRow) float64 { return t.TrainSeconds })
	ExamplesPerS = col("examples_per_s", "training throughput (examples/s)", "examples/s", true,
		func(t *results.TrialRow) float64 { return t.ExamplesPerS })
	TokensPerS = col("tokens_per_s", "training throughput (tokens/s)", "tokens/s", true,
		func(t *results.TrialRow) float64 { return t.TokensPerS })
	MsPerStep = col("ms_per_step", "time per optimizer step (ms)", "ms/step", false,
		func(t *results.TrialRow) float64 { return t.MsPerStep })
	OptimizerStateBytes = col("optimizer_state_bytes", "optimizer state (bytes)", "opt state", false,
		func(t *results.TrialRow) float64 { return t.OptimizerStateBytes })
	AdapterBytes = col("adapter_bytes", "adapter file size (bytes)", "adapter bytes", false,
		func(t *results.TrialRow) float64 { return t.AdapterBytes })
	ForwardMsUnmerged = col("forward_ms_unmerged", "forward latency, adapter unmerged (ms)", "fwd ms", false,
		func(t *results.TrialRow) float64 { return t.ForwardMsUnmerged })
	ForwardMsMerged = col("forward_ms_merged", "forward latency, adapter merged (ms)", "fwd ms merged", false,
		func(t *results.TrialRow) float64 { return t.ForwardMsMerged })
	MergeError = col("merge_error", "merge error: max |merged − adapter| output", "merge err", false,
		func(t *results.TrialRow) float64 { return t.MergeError })

	// RefusalRetention is the guardrail kept after fine-tuning (task
	// safety-guard), an extra metric.
	RefusalRetention = Column{Name: "refusal_retention", Label: "refusal retention (fraction refused)",
		Short: "refusal retention", Higher: true, Known: true}
	// ForgettingCE is the cross-entropy on retain data against the base
	// model's predictions, an extra metric.
	ForgettingCE = Column{Name: "forgetting_ce", Label: "forgetting: CE(base, tuned) on retain (nats)",
		Short: "forgetting CE", Higher: false, Known: true}
)

// columns are the numeric fixed columns of trials.parquet, in table
// order. The hyperparameter columns (lr, alpha, …) depend on the sweep:
// Lookup does not know them, and Column.Value reads them from Params.
var columns = []Column{TrainableParams, TotalParams, Steps, Rank, TargetLoss, TargetMetric,
	ValLoss, ValMetric,
	RetainLossBefore, RetainLossAfter, RetainMetricBefore, RetainMetricAfter, Forgetting,
	EffectiveRank, EnergyRank90, WallSeconds, PeakMemBytes,
	TrainSeconds, ExamplesPerS, TokensPerS, MsPerStep, OptimizerStateBytes, AdapterBytes,
	ForwardMsUnmerged, ForwardMsMerged, MergeError}

// extras are the extra metrics whose direction is known.
var extras = []Column{RefusalRetention, ForgettingCE}

// ColumnNames lists the names of Columns.
func ColumnNames() []string {
	out := make([]string, len(columns))
	for i, c := range columns {
		out[i] = c.Name
	}
	return out
}

// Lookup returns the column named name: a trials.parquet column or a known
// extra metric (ok), or else the extra key name of unknown direction.
func Lookup(name string) (c Column, ok bool) {
	for _, cs := range [][]Column{columns, extras} {
		for _, c := range cs {
			if c.Name == name {
				return c, true
			}
		}
	}
	return Column{Name: name, Label: name, Short: name}, false
}

// IsColumn reports whether name is a column of trials.parquet (not an
// extra key).
func IsColumn(name string) bool {
	for _, c := range columns {
		if c.Name == name {
			return true
		}
	}
	return false
}

// epsilonTolerance is how close a recorded intruder threshold must be to
// the one asked for: thresholds come from text (a sweep file, a flag), and
// a threshold computed as 0.1·k should still match 0.3.
const epsilonTolerance = 1e-9

// IntruderCount returns t's intruder count at threshold eps and whether t
// has one.
func IntruderCount(t *results.TrialRow, eps float64) (int64, bool) {
	for _, c := range t.Intruders {
		if math.Abs(c.Epsilon-eps) < epsilonTolerance {
			return c.Count, true
		}
	}
	return 0, false
}

// Intruders is the intruder count at ε (NaN when not computed).
func Intruders(eps float64) Column {
	return Column{Name: fmt.Sprintf("intruders@%g", eps), Label: fmt.Sprintf("intruder dimensions (ε = %g)", eps),
		Short: fmt.Sprintf("intruders ε=%g", eps), Known: true,
		get: func(t *results.TrialRow) float64 {
			if n, ok := IntruderCount(t, eps); ok {
				return float64(n)
			}
			return math.NaN()
		}}
}

// Extra returns the column of the extra key name (read from
// TrialRow.Extra, NaN when absent) and whether its direction is known.
func Extra(name string) (Column, bool) {
	for _, c := range extras {
		if c.Name == name {
			return c, true
		}
	}
	return Column{Name: name, Label: name, Short: name}, false
}
