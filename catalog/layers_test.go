package catalog_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"peftbench/catalog"
	"peftbench/methods"
	"peftbench/sweeps"
	"peftbench/tasks"
)

// TestLoadAsksTheMethod: the sweep loader refuses, at load time and at the
// value that set it, exactly what the method's own layer check refuses,
// and accepts what it accepts (VeRA above min(out, in), for one).
func TestLoadAsksTheMethod(t *testing.T) {
	cases := []struct {
		name, method, rank, targets, extra string
		want                               string // "" = loads
	}{
		{"lora-ga r9 fc1", "lora-ga", "9", `["fc1"]`, "",
			`x.toml:5:9: grid.rank[0]: method "lora-ga" on task "teacher-shift": option rank: 2·9 singular vectors needed but layer fc1 (64×16) has 16`},
		{"lora-ga r8 fc1", "lora-ga", "8", `["fc1"]`, "", ""},
		{"vera r256", "vera", "256", `["all-linear"]`, "", ""},
		{"vera default rank", "vera", "256", `["fc1", "fc2", "head"]`, "", ""},
		{"lora r128 fc2", "lora", "128", `["fc2"]`, "",
			`x.toml:5:9: grid.rank[0]: method "lora" on task "teacher-shift": option rank: 128 exceeds min(out, in) = 64 of layer fc2 (64×64)`},
		{"lora r8 head", "lora", "8", `["all-linear"]`, "",
			`x.toml:5:9: grid.rank[0]: method "lora" on task "teacher-shift": option rank: 8 exceeds min(out, in) = 5 of layer head (5×64)`},
		{"adalora default init_rank", "adalora", "12", `["fc1"]`, "",
			`x.toml:5:9: grid.rank[0]: method "adalora" on task "teacher-shift": option init_rank: 18 exceeds min(out, in) = 16 of layer fc1 (64×16)`},
		{"adalora init_rank set", "adalora", "8", `["fc1"]`, "[method.adalora]\ninit_rank = 20\n",
			`x.toml:10:13: method.adalora.init_rank: method "adalora" on task "teacher-shift": option init_rank: 20 exceeds min(out, in) = 16 of layer fc1 (64×16)`},
		{"adalora schedule", "adalora", "8", `["fc1"]`, "[method.adalora]\ntinit = 0.5\ntfinal = 0.5\n",
			`x.toml:11:10: method.adalora.tfinal: method "adalora" on task "teacher-shift": option tfinal: tinit + tfinal must leave steps for pruning`},
		{"adalora fits", "adalora", "8", `["fc1"]`, "", ""},
		{"full", "full", "", `["all-linear"]`, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rank := ""
			if c.rank != "" {
				rank = "rank = [" + c.rank + "]"
			}
			src := "seeds = 3\n[grid]\nmethod = [\"" + c.method + "\"]\ntask = [\"teacher-shift\"]\n" + rank +
				"\n[defaults]\ntargets = " + c.targets + "\n\n" + c.extra
			plan, err := sweeps.Parse("x.toml", []byte(src), catalog.Registries{})
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v\n%s", err, src)
			case c.want == "" && len(plan.Trials) != 3:
				t.Fatalf("%d trials, want 3", len(plan.Trials))
			case c.want != "" && err == nil:
				t.Fatalf("loaded %d trials, want an error containing %q\n%s", len(plan.Trials), c.want, src)
			case c.want != "" && !strings.Contains(err.Error(), "sweeps: "+c.want):
				t.Fatalf("error:\n%v\nwant it to contain:\n%s\nsweep:\n%s", err, c.want, src)
			}
		})
	}
}

// TestLoadAgreesWithMethods: for every method, task and rank, and two
// target choices, the sweep loads exactly when the methods package would
// let the trainer attach the method to the trial's targeted layers.
func TestLoadAgreesWithMethods(t *testing.T) {
	for _, task := range tasks.Names() {
		if _, err := tasks.ResolveOptions(task, nil); err != nil {
			t.Logf("%s: skipped, it has no default options (%v)", task, err)
			continue
		}
		shapes, err := tasks.Layers(task, nil)
		if err != nil {
			t.Fatal(err)
		}
		var all []sweeps.Layer
		for _, s := range shapes {
			all = append(all, sweeps.Layer{Name: s.Name, Out: s.Out, In: s.In})
		}
		for _, method := range methods.Names() {
			m, err := methods.Lookup(method)
			if err != nil {
				t.Fatal(err)
			}
			ranks := []int{0}
			if m.Info().HasRank {
				ranks = []int{1, 4, 8, 9, 16, 32, 33, 64, 128, 256}
			}
			for _, targets := range [][]string{{sweeps.AllLinear}, {all[0].Name}} {
				hit, err := sweeps.Targeted(targets, all)
				if err != nil {
					t.Fatal(err)
				}
				var ms []methods.LayerShape
				for _, l := range shapes {
					if slices.ContainsFunc(hit, func(h sweeps.Layer) bool { return h.Name == l.Name }) {
						ms = append(ms, methods.LayerShape{Name: l.Name, Out: l.Out, In: l.In, Bias: l.Bias})
					}
				}
				for _, r := range ranks {
					o, werr := methods.ResolveOptions(method, r, nil)
					if werr == nil {
						werr = methods.CheckLayers(method, o, ms)
					}
					// A method that tunes norm layers (LN tuning) is refused on
					// a task without them (the MLP tasks), naming the task.
					var noNorms string
					if werr == nil && methods.TunesNorms(method) {
						norms, err := tasks.Norms(task, nil)
						if err != nil {
							t.Fatal(err)
						}
						werr = methods.CheckNorms(method, o, norms)
						if len(norms) == 0 {
							noNorms = method + ": task " + task + " has no norm layers"
						}
					}
					src := "seeds = 3\n[grid]\nmethod = [\"" + method + "\"]\ntask = [\"" + task + "\"]\n"
					if r > 0 {
						src += "rank = [" + strconv.Itoa(r) + "]\n"
					}
					src += "[defaults]\ntargets = [\"" + targets[0] + "\"]\n"
					_, err := sweeps.Parse("x.toml", []byte(src), catalog.Registries{})
					if (err == nil) != (werr == nil) {
						t.Errorf("%s r=%d on %s targets %v: sweep error %v, method error %v", method, r, task, targets, err, werr)
					}
					if noNorms != "" && (err == nil || !strings.Contains(err.Error(), noNorms)) {
						t.Errorf("%s on %s: sweep error %v, want %q", method, task, err, noNorms)
					}
				}
			}
		}
	}
}
