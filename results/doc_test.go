package results

import (
	"context"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"peftbench/methods"
	"peftbench/tasks"
	"peftbench/train"
)

// docSections returns the code blocks of this package's documentation
// (doc.go), by the heading they follow, and the plain text of each section.
func docSections(t *testing.T) (code map[string][]string, text map[string]string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	var p comment.Parser
	d := p.Parse(f.Doc.Text())
	code, text = map[string][]string{}, map[string]string{}
	head := ""
	var pr comment.Printer
	for _, b := range d.Content {
		switch b := b.(type) {
		case *comment.Heading:
			head = ""
			for _, x := range b.Text {
				if s, ok := x.(comment.Plain); ok {
					head += string(s)
				}
			}
		case *comment.Code:
			code[head] = append(code[head], b.Text)
		default:
			text[head] += string(pr.Text(&comment.Doc{Content: []comment.Block{b}}))
		}
	}
	return code, text
}

// columns are the first words of a code block's unindented lines.
func columns(blocks []string) []string {
	var names []string
	for _, b := range blocks {
		for _, l := range strings.Split(b, "\n") {
			if l != "" && l[0] != ' ' {
				names = append(names, strings.Fields(l)[0])
			}
		}
	}
	return names
}

func parquetNames(v any) []string {
	var names []string
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("parquet"), ",")
		names = append(names, name)
	}
	return names
}

func sameSet(t *testing.T, what string, doc, code []string) {
	t.Helper()
	slices.Sort(doc)
	slices.Sort(code)
	if !slices.Equal(slices.Compact(doc), slices.Compact(code)) {
		t.Errorf("%s: doc.go lists %v, the code has %v", what, doc, code)
	}
}

// TestDocSchemas: the columns doc.go lists for each table are exactly the
// Parquet schema's.
func TestDocSchemas(t *testing.T) {
	code, _ := docSections(t)
	steps := code["steps.parquet"]
	if len(steps) < 2 {
		t.Fatalf("steps.parquet: %d code blocks in doc.go, want the schema and the builtin splits", len(steps))
	}
	sameSet(t, "trials.parquet", columns(code["trials.parquet"]), parquetNames(trialRecord{}))
	sameSet(t, "steps.parquet", columns(steps[:1]), parquetNames(stepRecord{}))
	sameSet(t, "spectra.parquet", columns(code["spectra.parquet"]), parquetNames(spectrumRecord{}))
}

// docSplits parses the table of the builtin trainer's splits and metrics.
func docSplits(t *testing.T, block string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	split, at := "", 0
	gap := regexp.MustCompile(` {2,}`)
	for _, l := range strings.Split(block, "\n") {
		indent := len(l) - len(strings.TrimLeft(l, " "))
		var metrics string
		switch {
		case l == "":
			continue
		case indent == 0:
			cols := gap.Split(l, 3)
			split, metrics = cols[0], cols[1]
			at = gap.FindStringIndex(l)[1]
		case indent == at:
			metrics = gap.Split(strings.TrimSpace(l), 2)[0]
		default:
			continue
		}
		for _, m := range strings.Split(metrics, ",") {
			if m = strings.TrimSpace(m); m != "" {
				out[split] = append(out[split], m)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no splits in %q", block)
	}
	return out
}

// recorder keeps what a trainer reports.
type recorder struct {
	steps   map[string][]string
	summary map[string]bool
}

var stageName = regexp.MustCompile(`^[A-Z][0-9]+_`)

func (r *recorder) Step(step int, split, metric string, v float64) {
	metric = stageName.ReplaceAllString(metric, "<stage>_")
	if !slices.Contains(r.steps[split], metric) {
		r.steps[split] = append(r.steps[split], metric)
	}
}
func (r *recorder) Summary(name string, v float64) {
	r.summary[stageName.ReplaceAllString(name, "<stage>_")] = true
}
func (r *recorder) Artifact(name, path string) {}
func (r *recorder) Log(msg string)             {}

// TestDocMetricNames runs a small continual builtin trial and checks that
// the splits and metrics doc.go lists for steps.parquet are exactly the
// ones the builtin trainer writes, that every summary name that is not a
// trials.parquet column is one doc.go names for extra, and that those it
// names for every task are reported.
func TestDocMetricNames(t *testing.T) {
	if testing.Short() {
		t.Skip("pretrains a small base model")
	}
	code, text := docSections(t)
	topts, err := tasks.ResolveOptions("teacher-shift", map[string]any{"pretrain_steps": 100, "eval_size": 256, "stages": 2})
	if err != nil {
		t.Fatal(err)
	}
	mopts, err := methods.ResolveOptions("lora", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.Config{
		Method: "lora", MethodOptions: mopts, Task: "teacher-shift", TaskOptions: topts, Seed: 1,
		Steps: 4, Batch: 16, LR: 1e-3, Optimizer: "adamw", Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		Schedule: "constant", EvalEvery: 2,
	}
	cache, err := tasks.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{steps: map[string][]string{}, summary: map[string]bool{}}
	if err := (&train.Trainer{Cache: cache, NoWeights: true}).Run(context.Background(), cfg, t.TempDir(), rec); err != nil {
		t.Fatal(err)
	}

	want := docSplits(t, code["steps.parquet"][1])
	splits := append(slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(rec.steps))...)
	slices.Sort(splits)
	for _, s := range slices.Compact(splits) {
		sameSet(t, "split "+s, slices.Clone(want[s]), slices.Clone(rec.steps[s]))
	}

	extra := text["trials.parquet"]
	var row TrialRow
	for name := range rec.summary {
		row = TrialRow{}
		row.SetMetric(name, 1)
		if _, ok := row.Extra[name]; ok && !strings.Contains(extra, name) {
			t.Errorf("the builtin trainer reports %s, which lands in extra, but doc.go does not name it", name)
		}
	}
	for _, name := range []string{"target_loss_before", "target_metric_before", "forgetting_ce", "<stage>_accuracy"} {
		if !strings.Contains(extra, name) {
			t.Errorf("doc.go no longer names %s in extra; update this test", name)
		}
		if !rec.summary[name] {
			t.Errorf("doc.go names %s in extra, but the builtin trainer does not report it", name)
		}
	}
	sg, err := tasks.Lookup("safety-guard")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"refusal_retention", "refusal_base"} {
		if !strings.Contains(extra, name) || !slices.Contains(sg.Info().Metrics, name) {
			t.Errorf("%s: named in doc.go %v, in safety-guard's metrics %v", name, strings.Contains(extra, name), sg.Info().Metrics)
		}
	}
}
