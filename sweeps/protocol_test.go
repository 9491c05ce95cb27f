package sweeps

import (
	"slices"
	"testing"
)

const tuneSrc = `
name = "t"
[protocol]
kind = "tune"
axes = ["lr"]
tune_seeds = 2
[grid]
method = ["lora", "full"]
rank = [4]
task = ["mlp"]
lr = [1e-3, 1e-2]
dropout = [0.0, 0.1]
[[include]]
method = "dora"
lr = [1e-3]
`

// TestTuneGroups: groups are method × rank × task and the untuned axes,
// points the tuned axes' values with one search trial per tune seed;
// every search trial is in exactly one point; the test seeds follow the
// tune seeds.
func TestTuneGroups(t *testing.T) {
	p := mustParse(t, tuneSrc)
	pr := p.Protocol
	if pr == nil || pr.Kind != "tune" || pr.Metric != "val_metric" || pr.Direction != "" {
		t.Fatalf("protocol = %+v", pr)
	}
	if !slices.Equal(pr.TuneSeeds, []int64{0, 1}) || !slices.Equal(pr.TestSeeds, []int64{2, 3, 4, 5, 6}) {
		t.Errorf("tune seeds %v, test seeds %v", pr.TuneSeeds, pr.TestSeeds)
	}
	var labels []string
	seen := map[string]int{}
	for _, g := range pr.Groups {
		labels = append(labels, g.Label)
		for _, pt := range g.Points {
			if len(pt.Trials) != 2 {
				t.Errorf("group %s point %v: %d trials, want one per tune seed", g.Label, pt.Values, len(pt.Trials))
			}
			for _, id := range pt.Trials {
				seen[id]++
			}
		}
	}
	want := []string{"lora r4 mlp dropout=0", "lora r4 mlp dropout=0.1", "full mlp", "dora r4 mlp"}
	if !slices.Equal(labels, want) {
		t.Errorf("groups %q, want %q", labels, want)
	}
	if n := len(pr.Groups[0].Points); n != 2 {
		t.Errorf("lora group: %d points, want 2", n)
	}
	for _, tr := range p.Trials {
		if tr.Phase != PhaseSearch {
			t.Errorf("trial %s: phase %q", tr.ID, tr.Phase)
		}
		if seen[tr.ID] != 1 {
			t.Errorf("trial %s in %d points", tr.ID, seen[tr.ID])
		}
	}
	if len(seen) != len(p.Trials) || len(p.Trials) != 14 {
		t.Errorf("%d trials, %d in points; want 14", len(p.Trials), len(seen))
	}
}

// TestTunePhaseIdentity: a search trial hashes differently from the same
// configuration in a plain sweep (its phase is part of its identity), the
// test trial differently again, deterministically, and the plain sweep's
// IDs are those of a sweep that never heard of phases.
func TestTunePhaseIdentity(t *testing.T) {
	tune := mustParse(t, tuneSrc)
	plain := mustParse(t, `
name = "t"
seeds = [0, 1]
[grid]
method = ["lora", "full"]
rank = [4]
task = ["mlp"]
lr = [1e-3, 1e-2]
dropout = [0.0, 0.1]
[[include]]
method = "dora"
lr = [1e-3]
`)
	if len(plain.Trials) != len(tune.Trials) {
		t.Fatalf("%d plain trials, %d search trials", len(plain.Trials), len(tune.Trials))
	}
	for i, s := range tune.Trials {
		pt := plain.Trials[i]
		if pt.Phase != "" || pt.ID == s.ID {
			t.Errorf("trial %d: plain %s phase %q, search %s", i, pt.ID, pt.Phase, s.ID)
		}
		s.Phase = ""
		if id, _ := TrialID(s, tune.Trainer); id != pt.ID {
			t.Errorf("trial %d: search trial less its phase hashes to %s, the plain trial is %s", i, id, pt.ID)
		}
	}
	s := tune.Trials[0]
	a, err := tune.TestTrial(s, 7, 99)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := tune.TestTrial(s, 7, 42)
	c, _ := tune.TestTrial(s, 8, 99)
	if a.Phase != PhaseTest || a.Seed != 7 || a.Index != 99 || a.ID == s.ID || a.ID != b.ID || a.ID == c.ID {
		t.Errorf("test trials: %+v / %s / %s (search %s)", a, b.ID, c.ID, s.ID)
	}
	if id, _ := TrialID(a, tune.Trainer); id != a.ID {
		t.Errorf("TrialID(test trial) = %s, want %s", id, a.ID)
	}
	a.MethodOptions["alpha"] = 1e9
	if tune.Trials[0].MethodOptions["alpha"] == 1e9 {
		t.Error("TestTrial shares its search trial's options map")
	}
}

// TestTuneSearchAxes: a [search] axis is a tuned axis by default, so a
// tune sweep may draw its points from a search instead of a grid list;
// each group's points are the search's points.
func TestTuneSearchAxes(t *testing.T) {
	p := mustParse(t, `
name = "t"
[protocol]
kind = "tune"
test_seeds = 3
[grid]
method = ["lora", "full"]
rank = [4]
task = ["mlp"]
[search]
kind = "sobol"
n = 4
lr = {log_uniform = [1e-4, 1e-1]}
`)
	pr := p.Protocol
	if !slices.Equal(pr.Axes, []string{"lr"}) {
		t.Fatalf("tuned axes %v, want [lr]", pr.Axes)
	}
	if len(pr.Groups) != 2 {
		t.Fatalf("%d groups, want lora and full", len(pr.Groups))
	}
	for _, g := range pr.Groups {
		if len(g.Points) != 4 {
			t.Errorf("group %s: %d points, want the search's 4", g.Label, len(g.Points))
		}
	}
}
