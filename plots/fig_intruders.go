package plots

import (
	"fmt"
	"slices"

	"gonum.org/v1/plot"
)

func init() {
	register(kind{order: 60, name: "intruders", summary: "intruder dimension count vs rank per method, α rule and swept setting, one panel per ε", build: intruders})
}

// intruders draws intruder counts against rank, one panel per ε.
func intruders(d *Data, task string) ([]*Figure, string) {
	es := d.epsilons(task)
	if len(es) == 0 {
		return nil, "no intruder counts recorded"
	}
	cells := d.Cells(task)
	var panels []*plot.Plot
	var legend []legendEntry
	for _, e := range es {
		p, l, ok := vsRankPanel(cells, IntruderMetric(e), fmt.Sprintf("ε = %g", e), "intruder dimensions (count)")
		if !ok {
			continue
		}
		for _, x := range l {
			if !slices.ContainsFunc(legend, func(y legendEntry) bool { return y.name == x.name }) {
				legend = append(legend, x)
			}
		}
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil, "no ranked trial has intruder counts"
	}
	return []*Figure{newFigure("intruders", task,
		fmt.Sprintf("%s: intruder dimensions (summed over targeted matrices) against rank, one panel per threshold ε, one line per method, α rule and setting swept within a rank; mean over seeds with CI bands; %s; methods without a rank as dashed lines.", task, d.ciNote(task)),
		panels, legend)}, ""
}
