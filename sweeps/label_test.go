package sweeps

import (
	"slices"
	"testing"
)

// TestLabels: a label shows the settings a sweep varies within a slot
// (task, method, rank), so trials differing only in lr or α get different
// labels, and settings that change only with the method do not clutter it.
func TestLabels(t *testing.T) {
	cases := []struct {
		name  string
		src   string
		swept []string
		want  []string // labels, in plan order
	}{
		{"lr only", `
seeds = 1
[grid]
method = ["lora"]
rank = [4]
task = ["mlp"]
lr = [1.0e-3, 3.0e-3]
[defaults]
steps = 10
`, []string{"train.lr"}, []string{
			"lora r=4 mlp lr=1e-3 seed=0",
			"lora r=4 mlp lr=3e-3 seed=0",
		}},
		{"lr and alpha", `
seeds = 1
[grid]
method = ["lora"]
rank = [4]
task = ["mlp"]
lr = [1.0e-3, 0.02]
alpha = [8, 16]
[defaults]
steps = 10
`, []string{"train.lr", "method_options.alpha"}, []string{
			"lora r=4 mlp lr=1e-3 α=8 seed=0",
			"lora r=4 mlp lr=1e-3 α=16 seed=0",
			"lora r=4 mlp lr=0.02 α=8 seed=0",
			"lora r=4 mlp lr=0.02 α=16 seed=0",
		}},
		{"per-method values are not swept", `
seeds = [0, 1]
[grid]
method = ["lora", "full"]
rank = [4]
task = ["mlp"]
[defaults]
steps = 10
[method.full]
lr = 3.0e-3
`, nil, []string{
			"lora r=4 mlp seed=0", "lora r=4 mlp seed=1", "full mlp seed=0", "full mlp seed=1",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, c.src)
			if got := Swept(p.Trials); !slices.Equal(got, c.swept) {
				t.Errorf("Swept = %q, want %q", got, c.swept)
			}
			var got []string
			for _, tr := range p.Trials {
				got = append(got, tr.Label(Swept(p.Trials)))
			}
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("labels = %q, want %q", got, want)
			}
			labels := p.Labels()
			seen := map[string]bool{}
			for _, tr := range p.Trials {
				if seen[labels[tr.ID]] {
					t.Errorf("two trials labelled %q", labels[tr.ID])
				}
				seen[labels[tr.ID]] = true
			}
		})
	}
}
