// Package ci holds the nightly workflow, the committed baseline and the
// scripts CI runs; its tests check the workflow file.
package ci

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	workflow       = "workflows/nightly.yml"
	githubWorkflow = "../.github/workflows/nightly.yml"
)

func loadWorkflow(t *testing.T) map[string]any {
	t.Helper()
	src, err := os.ReadFile(workflow)
	if err != nil {
		t.Fatal(err)
	}
	v, err := parseYAML(string(src))
	if err != nil {
		t.Fatalf("%s: %v", workflow, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: top level is %T, want a mapping", workflow, v)
	}
	return m
}

func TestWorkflowCopiesMatch(t *testing.T) {
	a, err := os.ReadFile(workflow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(githubWorkflow)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s and %s differ: GitHub runs the second; copy one over the other", workflow, githubWorkflow)
	}
}

// get walks a path of mapping keys and sequence indexes.
func get(v any, path ...any) any {
	for _, k := range path {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func TestWorkflowShape(t *testing.T) {
	w := loadWorkflow(t)
	cron, _ := get(w, "on", "schedule", 0, "cron").(string)
	if len(strings.Fields(cron)) != 5 {
		t.Errorf("on.schedule[0].cron = %q, want a 5-field cron line", cron)
	}
	if _, ok := get(w, "on").(map[string]any)["workflow_dispatch"]; !ok {
		t.Error("no workflow_dispatch trigger")
	}
	jobs, _ := get(w, "jobs").(map[string]any)
	if len(jobs) == 0 {
		t.Fatal("no jobs")
	}
	var uses []string
	for name, job := range jobs {
		if get(job, "runs-on") == nil {
			t.Errorf("job %s: no runs-on", name)
		}
		steps, _ := get(job, "steps").([]any)
		if len(steps) == 0 {
			t.Errorf("job %s: no steps", name)
		}
		for i, s := range steps {
			u, hasUses := get(s, "uses").(string)
			_, hasRun := get(s, "run").(string)
			if hasUses == hasRun {
				t.Errorf("job %s step %d: want exactly one of uses and run", name, i)
			}
			if hasUses {
				uses = append(uses, strings.SplitN(u, "@", 2)[0])
			}
		}
	}
	for _, want := range []string{"actions/checkout", "actions/setup-go", "actions/upload-artifact"} {
		if !slices.Contains(uses, want) {
			t.Errorf("no step uses %s", want)
		}
	}
	// The regression job uploads the report and the Parquet tables.
	var paths string
	for _, s := range get(w, "jobs", "regress", "steps").([]any) {
		if p, ok := get(s, "with", "path").(string); ok {
			paths += p
		}
	}
	for _, want := range []string{"regress.md", "trials.parquet", "report.html"} {
		if !strings.Contains(paths, want) {
			t.Errorf("the regress job does not upload %s", want)
		}
	}
}

// shellCommands returns the command words of a run script: the first word
// of every simple command, after variable assignments.
func shellCommands(script string) []string {
	var cmds []string
	for _, line := range strings.Split(script, "\n") {
		for _, part := range regexp.MustCompile(`&&|\|\||[;|]`).Split(line, -1) {
			for _, w := range strings.Fields(part) {
				if regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(w) {
					continue
				}
				if !strings.HasPrefix(w, "#") {
					cmds = append(cmds, w)
				}
				break
			}
		}
	}
	return cmds
}

func readmes(t *testing.T) string {
	t.Helper()
	var all string
	for _, p := range []string{"../README.md", "README.md"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all += string(b)
	}
	return all
}

// TestWorkflowCallsDocumentedCommands checks that every run step calls
// only scripts the READMEs document, that those scripts exist and are
// executable, and that every bench subcommand the scripts call is
// documented as well.
func TestWorkflowCallsDocumentedCommands(t *testing.T) {
	w := loadWorkflow(t)
	docs := readmes(t)
	benchSub := regexp.MustCompile(`bench(?:-head|-base)?" +([a-z]+)\b`) // "$bench" run, "$tmp/bench-head" regress
	for name, job := range get(w, "jobs").(map[string]any) {
		for i, s := range get(job, "steps").([]any) {
			run, ok := get(s, "run").(string)
			if !ok {
				continue
			}
			for _, cmd := range shellCommands(run) {
				if !strings.Contains(docs, "`"+cmd) {
					t.Errorf("job %s step %d calls %s, which neither README.md nor ci/README.md documents", name, i, cmd)
				}
				script := filepath.Join("..", cmd)
				fi, err := os.Stat(script)
				if err != nil {
					t.Errorf("job %s step %d: %v", name, i, err)
					continue
				}
				if fi.Mode()&0o111 == 0 {
					t.Errorf("%s is not executable", cmd)
				}
				src, _ := os.ReadFile(script)
				for _, m := range benchSub.FindAllStringSubmatch(string(src), -1) {
					if !strings.Contains(docs, "bench "+m[1]) {
						t.Errorf("%s calls bench %s, which the READMEs do not document", cmd, m[1])
					}
				}
			}
		}
	}
}

func TestShellCommands(t *testing.T) {
	got := shellCommands("FOO=1 ci/nightly.sh results/ci && echo done | tee x; ci/perf-ab.sh \"$PERF_BASE\" # comment")
	want := []string{"ci/nightly.sh", "echo", "tee", "ci/perf-ab.sh"}
	if !slices.Equal(got, want) {
		t.Errorf("shellCommands = %q, want %q", got, want)
	}
}

func TestParseYAML(t *testing.T) {
	src := `# comment
name: x # trailing
on:
  schedule:
    - cron: "0 3 * * *"
jobs:
  a:
    steps:
      - uses: actions/checkout@v4
        with:
          path: |
            one
            two
      - run: echo 'hi'
      -
        name: 'it''s'
list:
- a
- "b\tc"
`
	got, err := parseYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "x",
		"on":   map[string]any{"schedule": []any{map[string]any{"cron": "0 3 * * *"}}},
		"jobs": map[string]any{"a": map[string]any{"steps": []any{
			map[string]any{"uses": "actions/checkout@v4", "with": map[string]any{"path": "one\ntwo\n"}},
			map[string]any{"run": "echo 'hi'"},
			map[string]any{"name": "it's"},
		}}},
		"list": []any{"a", "b\tc"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseYAML =\n%#v\nwant\n%#v", got, want)
	}
	for _, bad := range []string{
		"a: 1\na: 2\n",          // duplicate key
		"a: {b: 1}\n",           // flow mapping
		"a: [1, 2]\n",           // flow sequence
		"a:\n  b: 1\n   c: 2\n", // bad indentation
		"a: &x 1\n",             // anchor
		"a: \"open\n",           // unterminated
		"just text\n",           // not a mapping
		"a:\n\tb: 1\n",          // tab
	} {
		if _, err := parseYAML(bad); err == nil {
			t.Errorf("parseYAML(%q): no error", bad)
		}
	}
}

// TestWorkflowMatchesPyYAML cross-checks the parser on the workflow
// against PyYAML when /usr/bin/python3 (or $PEFTBENCH_PYTHON) has it.
func TestWorkflowMatchesPyYAML(t *testing.T) {
	py := os.Getenv("PEFTBENCH_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	const prog = `import json, sys, yaml
def conv(v):
    if isinstance(v, dict):
        return {("on" if k is True else str(k)): conv(x) for k, x in v.items()}
    if isinstance(v, list):
        return [conv(x) for x in v]
    if isinstance(v, bool):
        return "true" if v else "false"
    return None if v is None else str(v)
print(json.dumps(conv(yaml.safe_load(open(sys.argv[1])))))`
	out, err := exec.Command(py, "-c", prog, workflow).Output()
	if err != nil {
		t.Skipf("%s cannot load the workflow with PyYAML (apt-get install python3-yaml): %v", py, err)
	}
	var want any
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	got := loadWorkflow(t)
	gotJSON, _ := json.Marshal(got)
	var gotAny any
	json.Unmarshal(gotJSON, &gotAny)
	if !reflect.DeepEqual(gotAny, want) {
		t.Errorf("parseYAML and PyYAML disagree on %s:\n%s\n%s", workflow, gotJSON, out)
	}
}
