package plots

import "fmt"

func init() {
	register(kind{order: 90, name: "efficiency", summary: "efficiency frontier: trainable parameters vs target metric", build: efficiency})
}

func efficiency(d *Data, task string) ([]*Figure, string) {
	return scatterByMethod(d, task, TrainableParams, TargetMetric, "efficiency", true, true,
		"no trial reports trainable parameters and a target metric",
		fmt.Sprintf("%s: %s against trainable parameters (log scale); error bars: %s; the dashed line is the efficiency frontier.", task, metricLabel(task), d.ciNote(task)))
}
