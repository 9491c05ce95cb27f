package train

import (
	"slices"
	"strings"

	"peftbench/tasks"
)

// TargetMetricName names the metric the builtin engine reports as
// target_metric for task: the tasks.Summary name that resultNames maps to
// target_metric ("target_accuracy"), without its "target_" prefix, when
// the task lists it in its Info.Metrics; "" for an unknown task.
func TargetMetricName(task string) string {
	tk, err := tasks.Lookup(task)
	if err != nil {
		return ""
	}
	metrics := tk.Info().Metrics
	for from, to := range resultNames {
		if to == "target_metric" && slices.Contains(metrics, from) {
			return strings.TrimPrefix(from, "target_")
		}
	}
	return ""
}
