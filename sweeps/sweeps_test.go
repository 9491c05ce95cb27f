package sweeps

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden expansions of testdata/good")

// TestBadFiles loads every malformed sweep under testdata/bad; each file's
// first line, "# want: FILE:LINE:COL: ...", is a substring the error must
// contain.
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("%d malformed sweeps under testdata/bad, want at least 20", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(src), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok || want == "" {
				t.Fatalf("first line %q is not a \"# want: ...\" comment", first)
			}
			if !strings.HasPrefix(want, filepath.Base(f)+":") {
				t.Fatalf("want %q does not start with the file name and line", want)
			}
			p, err := Load(f, fakeCatalog{})
			if err == nil {
				t.Fatalf("Load succeeded with %d trials, want error containing %q", len(p.Trials), want)
			}
			if !strings.Contains(err.Error(), "sweeps: testdata/bad/"+want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != f || e.Line < 1 || e.Col < 1 {
				t.Errorf("error %v: want a located *Error for %s", err, f)
			}
		})
	}
}

// TestGoodFiles expands every sweep under testdata/good and compares the
// plan with its golden JSON; go test -update rewrites the goldens.
func TestGoodFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no sweeps under testdata/good")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := Load(f, fakeCatalog{})
			if err != nil {
				t.Fatal(err)
			}
			for i, tr := range p.Trials {
				if tr.Index != i || tr.Sweep != p.Name || len(tr.ID) != 16 {
					t.Errorf("trial %d: index %d, sweep %q, id %q", i, tr.Index, tr.Sweep, tr.ID)
				}
				if id, _ := TrialID(tr, p.Trainer); id != tr.ID {
					t.Errorf("trial %d: TrialID = %s, want %s", i, id, tr.ID)
				}
			}
			p.Source = "" // the golden holds the expansion, not a copy of the input
			got, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(f, ".toml") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("plan differs from %s (go test -update rewrites it); got:\n%s", golden, got)
			}
		})
	}
}

func mustParse(t *testing.T, src string) *Plan {
	t.Helper()
	p, err := Parse("test.toml", []byte(src), fakeCatalog{})
	if err != nil {
		t.Fatalf("Parse: %v\nsource:\n%s", err, src)
	}
	return p
}

func ids(p *Plan) []string {
	var s []string
	for _, t := range p.Trials {
		s = append(s, t.ID)
	}
	return s
}

func sortedIDs(p *Plan) []string {
	s := ids(p)
	slices.Sort(s)
	return s
}

// TestIDStable: the same trials get the same IDs whatever the order of the
// grid, the sweep's name, its resources or how alpha is written.
func TestIDStable(t *testing.T) {
	base := mustParse(t, `
name = "a"
seeds = [0, 1, 2]
[grid]
method = ["lora", "dora", "full"]
rank = [4, 8]
task = ["mlp", "tiny-gpt"]
alpha = [8, 16]
[defaults]
targets = "all-linear"
`)
	if len(base.Trials) != 3*2*2*2*2+3*2 {
		t.Fatalf("%d trials, want %d", len(base.Trials), 3*2*2*2*2+3*2)
	}
	same := []struct{ name, src string }{
		{"reordered", `
name = "b"
seeds = [2, 0, 1]
[grid]
task = ["tiny-gpt", "mlp"]
alpha = [16, 8]
rank = [8, 4]
method = ["full", "dora", "lora"]
`},
		{"other resources", `
name = "a"
seeds = 3
[grid]
method = ["lora", "dora", "full"]
rank = [4, 8]
task = ["mlp", "tiny-gpt"]
alpha = [8, 16]
[resources]
workers = 7
threads_per_trial = 3
gpus = "auto"
[analysis]
spectra = true
`},
		{"alpha as rank multiple", `
name = "a"
seeds = 3
[grid]
method = ["lora", "dora", "full"]
rank = [4, 8]
task = ["mlp", "tiny-gpt"]
alpha = ["2r", 16, 8.0]
`},
		{"alpha as the method's rank grammar", `
name = "a"
seeds = 3
[grid]
method = ["lora", "dora", "full"]
rank = [4, 8]
task = ["mlp", "tiny-gpt"]
alpha = ["2 * r", 16, 8.0]
`},
	}
	for _, c := range same {
		t.Run(c.name, func(t *testing.T) {
			if got, want := sortedIDs(mustParse(t, c.src)), sortedIDs(base); !slices.Equal(got, want) {
				t.Errorf("IDs differ from the base sweep:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestIDChanges: changing any value that can change a result changes the
// trial's ID.
func TestIDChanges(t *testing.T) {
	const base = `
seeds = [0]
[grid]
method = ["lora"]
rank = [4]
task = ["mlp"]
%s
[defaults]
%s
`
	ref := mustParse(t, fmt.Sprintf(base, "", ""))
	if len(ref.Trials) != 1 {
		t.Fatalf("%d trials, want 1", len(ref.Trials))
	}
	changes := []struct{ grid, defaults string }{
		{"rank = [8]", ""},
		{"", "alpha = 4"},
		{"", "dropout = 0.1"},
		{"", `init = "gaussian"`},
		{"", "hidden = 32"},
		{"", "noise = 0.1"},
		{"", "steps = 999"},
		{"", "batch = 8"},
		{"", "lr = 2e-3"},
		{"", `optimizer = "sgd"`},
		{"", "momentum = 0.5"},
		{"", "beta1 = 0.8"},
		{"", "beta2 = 0.99"},
		{"", "eps = 1e-6"},
		{"", "weight_decay = 0.01"},
		{"", `schedule = "cosine"`},
		{"", "warmup = 5"},
		{"", "grad_clip = 1.0"},
		{"", "eval_every = 10"},
		{"", `targets = ["fc1"]`},
	}
	seen := map[string]string{ref.Trials[0].ID: "base"}
	for _, c := range changes {
		name := c.grid + c.defaults
		src := fmt.Sprintf(base, "", c.defaults)
		if c.grid != "" {
			src = strings.Replace(fmt.Sprintf(base, "", ""), "rank = [4]", c.grid, 1)
		}
		p := mustParse(t, src)
		id := p.Trials[0].ID
		if prev, dup := seen[id]; dup {
			t.Errorf("%s: ID %s equals that of %s", name, id, prev)
		}
		seen[id] = name
	}
	seeded := mustParse(t, strings.Replace(fmt.Sprintf(base, "", ""), "seeds = [0]", "seeds = [1]", 1))
	if seeded.Trials[0].ID == ref.Trials[0].ID {
		t.Error("changing the seed kept the ID")
	}
	cmd := mustParse(t, fmt.Sprintf(base, "", "")+"\n[trainer]\nkind = \"command\"\ncommand = [\"./train\"]\n")
	if cmd.Trials[0].ID == ref.Trials[0].ID {
		t.Error("switching to an external trainer kept the ID")
	}
}

func TestRanklessMethods(t *testing.T) {
	p := mustParse(t, `
seeds = 3
[grid]
method = ["full", "lora"]
rank = [1, 2, 4, 8]
task = "mlp"
alpha = [8, 16]
`)
	count := map[string]int{}
	for _, tr := range p.Trials {
		count[tr.Method]++
		if tr.Method == "full" && tr.Rank != 0 {
			t.Errorf("full trial with rank %d", tr.Rank)
		}
		if tr.Method == "lora" && tr.Rank == 0 {
			t.Error("lora trial without rank")
		}
	}
	if count["full"] != 3 || count["lora"] != 3*4*2 {
		t.Errorf("trials per method %v, want full 3 (one per seed), lora 24", count)
	}
}

func TestIncludeExclude(t *testing.T) {
	p := mustParse(t, `
seeds = [0, 1, 2]
[grid]
method = ["lora", "dora"]
rank = [4, 8]
task = ["mlp", "tiny-gpt"]
[[exclude]]
method = "dora"
rank = [8]
[[exclude]]
task = "tiny-gpt"
seed = [1, 2]
[[include]]
method = "full"
lr = [1e-5, 1e-4]
seed = 0
`)
	type key struct {
		method string
		rank   int
		task   string
		seed   int64
		lr     float64
	}
	got := map[key]bool{}
	for _, tr := range p.Trials {
		got[key{tr.Method, tr.Rank, tr.Task, tr.Seed, tr.Train.LR}] = true
	}
	want := map[key]bool{}
	for _, s := range []int64{0, 1, 2} {
		for _, m := range []string{"lora", "dora"} {
			for _, r := range []int{4, 8} {
				for _, task := range []string{"mlp", "tiny-gpt"} {
					if m == "dora" && r == 8 || task == "tiny-gpt" && s != 0 {
						continue
					}
					want[key{m, r, task, s, 1e-3}] = true
				}
			}
		}
	}
	for _, task := range []string{"mlp", "tiny-gpt"} {
		for _, lr := range []float64{1e-5, 1e-4} {
			want[key{"full", 0, task, 0, lr}] = true
		}
	}
	if len(got) != len(p.Trials) {
		t.Errorf("duplicate trials: %d distinct of %d", len(got), len(p.Trials))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("missing trial %+v", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("unexpected trial %+v", k)
		}
	}
}

// TestPrecedence: [defaults] < [task.X] < [method.X] < grid and include
// values.
func TestPrecedence(t *testing.T) {
	p := mustParse(t, `
seeds = 1
[grid]
method = ["lora", "full"]
rank = [4]
task = ["mlp", "tiny-gpt"]
[defaults]
lr = 1.0e-3
steps = 10
batch = 4
[task.tiny-gpt]
lr = 2.0e-3
steps = 20
[method.full]
lr = 3.0e-3
[[include]]
method = "lora"
task = "mlp"
steps = 99
`)
	type want struct {
		lr           float64
		steps, batch int
	}
	cases := map[string]want{
		"lora/mlp/10":      {1e-3, 10, 4},
		"lora/tiny-gpt/20": {2e-3, 20, 4},
		"full/mlp/10":      {3e-3, 10, 4},
		"full/tiny-gpt/20": {3e-3, 20, 4},
		"lora/mlp/99":      {1e-3, 99, 4},
	}
	if len(p.Trials) != len(cases) {
		t.Fatalf("%d trials, want %d", len(p.Trials), len(cases))
	}
	for _, tr := range p.Trials {
		k := fmt.Sprintf("%s/%s/%d", tr.Method, tr.Task, tr.Train.Steps)
		w, ok := cases[k]
		if !ok {
			t.Errorf("unexpected trial %s", k)
			continue
		}
		if tr.Train.LR != w.lr || tr.Train.Batch != w.batch {
			t.Errorf("%s: lr %v batch %d, want lr %v batch %d", k, tr.Train.LR, tr.Train.Batch, w.lr, w.batch)
		}
	}
}

func TestSections(t *testing.T) {
	p := mustParse(t, `
name = "sec"
description = "all sections"
seeds = [5, 6, 7]
[grid]
method = "lora"
rank = 4
task = "mlp"
[resources]
workers = 3
threads_per_trial = 2
gpus = [0, "1"]
timeout = "1h30m"
retries = 2
[executor]
kind = "slurm"
partition = "gpu"
time_limit = "02:00:00"
cpus_per_task = 4
mem_per_task = "16G"
gpus_per_task = 1
throttle = 8
sbatch_args = ["--qos=low"]
setup = "module load go"
poll_every = "10s"
[trainer]
kind = "command"
command = ["python3", "train.py", "--fast"]
env = { OMP_NUM_THREADS = "1" }
[analysis]
spectra = true
epsilons = [0.1, 0.5, 0.9]
top_k = 5
`)
	want := Plan{
		Name: "sec", Description: "all sections",
		Resources: Resources{Workers: 3, ThreadsPerTrial: 2, GPUs: []string{"0", "1"}, GPUsPerTrial: 1, Timeout: 90 * time.Minute, Retries: 2},
		Executor: Executor{Kind: "slurm", Partition: "gpu", TimeLimit: "02:00:00", CPUsPerTask: 4, MemPerTask: "16G",
			GPUsPerTask: 1, Throttle: 8, SbatchArgs: []string{"--qos=low"}, Setup: "module load go", PollEvery: 10 * time.Second},
		Trainer:  TrainerSpec{Kind: "command", Command: []string{"python3", "train.py", "--fast"}, Env: map[string]string{"OMP_NUM_THREADS": "1"}},
		Analysis: Analysis{Spectra: true, Epsilons: []float64{0.1, 0.5, 0.9}, TopK: 5},
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"name", p.Name, want.Name},
		{"description", p.Description, want.Description},
		{"resources", p.Resources, want.Resources},
		{"executor", p.Executor, want.Executor},
		{"trainer", p.Trainer, want.Trainer},
		{"analysis", p.Analysis, want.Analysis},
	} {
		g, _ := json.Marshal(c.got)
		w, _ := json.Marshal(c.want)
		if !bytes.Equal(g, w) {
			t.Errorf("%s = %s, want %s", c.name, g, w)
		}
	}
	var seeds []int64
	for _, tr := range p.Trials {
		seeds = append(seeds, tr.Seed)
	}
	if !slices.Equal(seeds, []int64{5, 6, 7}) {
		t.Errorf("seeds %v, want [5 6 7]", seeds)
	}
	if len(p.Warnings) != 0 {
		t.Errorf("warnings %q, want none", p.Warnings)
	}
}

func TestDefaultsAndWarnings(t *testing.T) {
	p := mustParse(t, `
seeds = 2
[grid]
method = "lora"
rank = 4
task = "mlp"
[method.dora]
alpha = 4
[[exclude]]
task = "tiny-gpt"
`)
	if p.Name != "test" {
		t.Errorf("name %q, want the file's base name %q", p.Name, "test")
	}
	if p.Executor.Kind != "local" || p.Trainer.Kind != "builtin" || p.Analysis.TopK != 10 || !slices.Equal(p.Analysis.Epsilons, []float64{0.5}) {
		t.Errorf("defaults: executor %+v trainer %+v analysis %+v", p.Executor, p.Trainer, p.Analysis)
	}
	tc := p.Trials[0].Train
	if tc.Steps != 1000 || tc.Optimizer != "adamw" || !slices.Equal(tc.Targets, []string{AllLinear}) {
		t.Errorf("train defaults %+v", tc)
	}
	for _, w := range []string{
		"test.toml:2:1: seeds: 2 seed(s)",
		"test.toml:7:1: method.dora: method \"dora\" is in no trial",
		"test.toml:9:1: exclude[0]: matches no trial",
	} {
		if !slices.ContainsFunc(p.Warnings, func(s string) bool { return strings.HasPrefix(s, w) }) {
			t.Errorf("warnings %q lack %q", p.Warnings, w)
		}
	}
}

// TestErrorsCollected: independent problems are all reported, in file
// order.
func TestErrorsCollected(t *testing.T) {
	_, err := Parse("x.toml", []byte(`seeds = 3
[grid]
method = ["lroa"]
task = ["mlp"]
[defaults]
steps = -1
[resources]
retries = -2
`), fakeCatalog{})
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`sweeps: x.toml:3:11: grid.method[0]: unknown method "lroa" (did you mean "lora"?)`,
		`sweeps: x.toml:6:9: defaults.steps: must be positive, got -1`,
		`sweeps: x.toml:8:11: resources.retries: must not be negative, got -2`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"), fakeCatalog{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
}

func TestTargeted(t *testing.T) {
	layers := []Layer{{Name: "a.q", Out: 4, In: 4}, {Name: "a.k", Out: 4, In: 4}, {Name: "b.q", Out: 4, In: 4}}
	got, err := Targeted([]string{"q", "a.k"}, layers)
	if err != nil || len(got) != 3 || got[0].Name != "a.q" || got[1].Name != "a.k" {
		t.Errorf("Targeted = %v, %v; want all three in layer order", got, err)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"lora", "dora", "full", "rslora", "lora_plus"}
	cases := []struct{ in, want string }{
		{"lroa", "lora"},
		{"LoRA", "lora"},
		{"rslroa", "rslora"},
		{"ful", "full"},
		{"lora-plus", "lora_plus"},
		{"adalora-xyz", ""},
		{"q", ""},
	}
	for _, c := range cases {
		got := didYouMean(c.in, names)
		want := ""
		if c.want != "" {
			want = fmt.Sprintf(" (did you mean %q?)", c.want)
		}
		if got != want {
			t.Errorf("didYouMean(%q) = %q, want %q", c.in, got, want)
		}
	}
}

func TestPositions(t *testing.T) {
	src := `# comment
name = "x" # trailing
seeds = [
  0,
  1,
]
"quoted key" = 'v'
a.b = { c = 1, d = [2, 3] }
s = """multi
line""" ; t = 1

[grid]
method = ["lora", 'full']
[method."odd.name"]
alpha = 8
[[include]]
x = 1
[[include]]
x = 2
when = 1979-05-27 07:32:00Z
after = 3
`
	ps := scanPositions(src)
	cases := []struct {
		path     string
		key, val pos
	}{
		{"name", pos{2, 1}, pos{2, 8}},
		{"seeds", pos{3, 1}, pos{3, 9}},
		{"seeds[1]", pos{5, 3}, pos{5, 3}},
		{`"quoted key"`, pos{7, 1}, pos{7, 16}},
		{"a.b", pos{8, 1}, pos{8, 7}},
		{"a.b.c", pos{8, 9}, pos{8, 13}},
		{"a.b.d[1]", pos{8, 24}, pos{8, 24}},
		{"grid.method[1]", pos{13, 19}, pos{13, 19}},
		{`method."odd.name".alpha`, pos{15, 1}, pos{15, 9}},
		{"include[0].x", pos{17, 1}, pos{17, 5}},
		{"include[1].x", pos{19, 1}, pos{19, 5}},
		{"include[1].after", pos{21, 1}, pos{21, 9}},
		{"grid.missing", pos{12, 1}, pos{12, 1}},
	}
	for _, c := range cases {
		if got := ps.key(c.path); got != c.key {
			t.Errorf("key(%s) = %v, want %v", c.path, got, c.key)
		}
		if got := ps.val(c.path); got != c.val {
			t.Errorf("val(%s) = %v, want %v", c.path, got, c.val)
		}
	}
}

// BenchmarkParse measures loading and expanding a 1,000-trial sweep.
func BenchmarkParse(b *testing.B) {
	src := []byte(`
seeds = 10
[grid]
method = ["lora", "rslora", "dora", "lora_plus", "vera"]
rank = [1, 2, 4, 6, 8]
task = ["mlp", "tiny-gpt"]
lr = [1e-3, 3e-3]
`)
	p, err := Parse("bench.toml", src, fakeCatalog{})
	if err != nil {
		b.Fatal(err)
	}
	if len(p.Trials) != 1000 {
		b.Fatalf("%d trials, want 1000", len(p.Trials))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bench.toml", src, fakeCatalog{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/trial")
}

// FuzzParse: no input makes Parse panic, and every error it returns is
// located in the file.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("fuzz.toml", src, fakeCatalog{})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != "fuzz.toml" {
				t.Fatalf("error %v is not a located *Error", err)
			}
			return
		}
		if len(p.Trials) == 0 {
			t.Fatal("no error and no trials")
		}
	})
}
