package plots

import (
	"fmt"

	"gonum.org/v1/plot"
)

func init() {
	register(kind{order: 10, name: "metric-vs-rank", summary: "target metric vs rank, one line per method, α rule and swept setting", build: metricVsRank})
}

func metricVsRank(d *Data, task string) ([]*Figure, string) {
	m := TargetMetric
	p, legend, ok := vsRankPanel(d.Cells(task), m, task, metricLabel(task))
	if !ok {
		return nil, "no ranked trial reports a target metric"
	}
	base := ""
	if v, ok := d.baseValue(task, m); ok {
		addBaseY(p, v)
		legend = append(legend, baseEntry)
		base = "; the dotted line is the base model before fine-tuning (step 0)"
	}
	return []*Figure{newFigure("metric-vs-rank", task,
		fmt.Sprintf("%s: %s against adapter rank; mean over seeds with CI bands; %s; methods without a rank as dashed reference lines%s.", task, metricLabel(task), d.ciNote(task), base),
		[]*plot.Plot{p}, legend)}, ""
}
