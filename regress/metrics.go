package regress

import (
	"strings"

	"peftbench/configs"
)

// Metric is a final metric of the trials table that a regression can
// move, with the direction that counts as better: a column of the
// registry (configs.Column).
type Metric = configs.Column

// Metrics are the trials-table metrics bench regress compares, in table
// order. retain_*_before are absent: they measure the base model, which a
// trial does not train, and a change there is a task change, caught by
// every retain_*_after and forgetting row anyway.
var Metrics = []Metric{configs.TargetMetric, configs.TargetLoss, configs.Forgetting,
	configs.RetainMetricAfter, configs.RetainLossAfter}

// WallMetric is training wall time. It is compared only when
// Options.WallMinEffect is set: wall time on a shared CI runner varies by
// tens of percent from run to run, and engine speed has its own,
// controlled comparison (bench perf, regress --perf).
var WallMetric = configs.WallSeconds

// baseModelExtra reports whether an Extra key measures the base model
// (suffix _before or _base, e.g. target_metric_before, refusal_base). Like
// retain_*_before these are left out: every method and seed of a task
// shares the base, so they say nothing about a method, and a change in
// them moves the tuned metrics that are compared.
func baseModelExtra(name string) bool {
	return strings.HasSuffix(name, "_before") || strings.HasSuffix(name, "_base")
}

// extraMetric returns the Metric of an Extra key and whether its direction
// is known (configs.Extra): extras not known are compared too, and a
// significant change is reported as a warning, never a failure.
func extraMetric(name string) (Metric, bool) { return configs.Extra(name) }

// unitHigherIsBetter says whether a larger value is better for a bench perf
// figure in unit: rates (anything "/s", "per second", "ops") are better
// higher; times, bytes and allocations better lower. ok is false for a unit
// it does not know.
func unitHigherIsBetter(unit string) (higher, ok bool) {
	u := strings.ToLower(strings.TrimSpace(unit))
	switch {
	case strings.HasSuffix(u, "/s"), strings.HasSuffix(u, "/sec"), strings.Contains(u, "per second"),
		strings.HasSuffix(u, "ops"), strings.HasSuffix(u, "flops"), u == "x", u == "speedup":
		return true, true
	}
	switch strings.TrimSuffix(strings.TrimSuffix(u, "/op"), "/step") {
	case "ns", "us", "µs", "ms", "s", "sec", "seconds", "min",
		"b", "bytes", "kb", "kib", "mb", "mib", "gb", "gib", "allocs":
		return false, true
	}
	return false, false
}
