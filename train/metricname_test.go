package train

import (
	"testing"

	"peftbench/tasks"
)

// TestTargetMetricName: every builtin task's target metric is accuracy
// (results/doc.go), and an unknown task has no name.
func TestTargetMetricName(t *testing.T) {
	for _, info := range tasks.Infos() {
		if got := TargetMetricName(info.Name); got != "accuracy" {
			t.Errorf("%s: target metric %q, want accuracy", info.Name, got)
		}
	}
	if got := TargetMetricName("no-such-task"); got != "" {
		t.Errorf("unknown task: %q, want \"\"", got)
	}
}
