package plots

import "fmt"

func init() {
	register(kind{order: 100, name: "safety", summary: "safety retention vs target metric (safety-guard)", build: safety,
		few: "no trial reports refusal_retention (task safety-guard)"})
}

func safety(d *Data, task string) ([]*Figure, string) {
	return scatterByMethod(d, task, TargetMetric, RefusalRetention, "safety", false, false,
		"no trial reports refusal_retention",
		fmt.Sprintf("%s: refusal retention (fraction of triggered inputs still refused) against %s, per method and rank; error bars: %s.", task, metricLabel(task), d.ciNote(task)))
}
