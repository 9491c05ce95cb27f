package plots

import (
	"math"
	"slices"
	"testing"

	"peftbench/configs"
)

// TestParetoOf checks the view's data: every registry column with data is
// offered (read from configs.Numeric, not a list here), extras of unknown
// direction too but without a direction, and each point is its
// configuration's mean over seeds.
func TestParetoOf(t *testing.T) {
	d, err := Load(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	v := paretoOf(d)
	if v == nil {
		t.Fatal("no Pareto view for the fixture")
	}
	if v.X != "trainable_params" || v.Y != "target_metric" {
		t.Errorf("default axes %s, %s; want trainable_params, target_metric", v.X, v.Y)
	}
	byName := map[string]paretoColumn{}
	for _, c := range v.Columns {
		byName[c.Name] = c
	}
	for _, c := range configs.Numeric() {
		if _, ok := byName[c.Name]; !ok && c.Name != "forgetting_ce" { // the fixture has no forgetting_ce
			t.Errorf("registry column %s not offered", c.Name)
		}
	}
	for name, known := range map[string]bool{"refusal_retention": true, "intruders@0.5": true, "target_metric_before": false} {
		if c, ok := byName[name]; !ok || c.Known != known {
			t.Errorf("column %s: offered %v, direction known %v; want offered, known %v", name, ok, c.Known, known)
		}
	}
	if c := byName["forgetting"]; c.Higher || !c.Known {
		t.Errorf("forgetting: higher %v known %v; want lower is better", c.Higher, c.Known)
	}
	if !slices.Equal(v.Tasks, d.Tasks()) {
		t.Errorf("tasks %v, want %v", v.Tasks, d.Tasks())
	}
	cells := d.Cells("teacher-shift")
	pts := v.Data.Tasks[slices.Index(v.Tasks, "teacher-shift")].Points
	if len(pts) != len(cells) {
		t.Fatalf("%d points, want one per configuration (%d)", len(pts), len(cells))
	}
	for i, c := range cells {
		s := c.Summary(Forgetting)
		if got := pts[i].V["forgetting"]; got == nil || math.Abs(*got-s.Mean) > 1e-12 || pts[i].Seeds != s.N {
			t.Errorf("%s: forgetting %v over %d seeds, want mean %g over %d", c.Label(), got, pts[i].Seeds, s.Mean, s.N)
		}
		if pts[i].V["refusal_retention"] != nil {
			t.Errorf("%s: refusal_retention %v on teacher-shift, which does not report it", c.Label(), *pts[i].V["refusal_retention"])
		}
	}
}
