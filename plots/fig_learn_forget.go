package plots

import "fmt"

func init() {
	register(kind{order: 20, name: "learn-forget", summary: "learning vs forgetting: target metric against forgetting per configuration", build: learnForget})
}

func learnForget(d *Data, task string) ([]*Figure, string) {
	return scatterByMethod(d, task, Forgetting, TargetMetric, "learn-forget", false, true,
		"no trial reports both forgetting and a target metric",
		fmt.Sprintf("%s: learning (%s) against forgetting per configuration (labels give r, or the settings of a method without a rank, whose points are joined as its curve); error bars: %s; the dashed line is the Pareto front (less forgetting, more learning).", task, metricLabel(task), d.ciNote(task)))
}
