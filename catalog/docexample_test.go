package catalog_test

import (
	"go/doc/comment"
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"peftbench/catalog"
	"peftbench/sweeps"
)

// TestSweepsDocExample loads the sweep file of the sweeps package's
// documentation (the code block under "# A sweep file" in sweeps/doc.go)
// against the real registries, so that every method, task and option it
// names exists.
func TestSweepsDocExample(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "../sweeps/doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil {
		t.Fatal("sweeps/doc.go has no package comment")
	}
	var p comment.Parser
	d := p.Parse(f.Doc.Text())
	var src string
	inSection := false
	for _, b := range d.Content {
		switch b := b.(type) {
		case *comment.Heading:
			var text strings.Builder
			for _, x := range b.Text {
				if s, ok := x.(comment.Plain); ok {
					text.WriteString(string(s))
				}
			}
			inSection = text.String() == "A sweep file"
		case *comment.Code:
			if inSection && src == "" {
				src = b.Text
			}
		}
	}
	if !strings.Contains(src, "[grid]") {
		t.Fatalf("no sweep file under \"# A sweep file\" in sweeps/doc.go; found %q", src)
	}
	plan, err := sweeps.Parse("doc.toml", []byte(src), catalog.Registries{})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if len(plan.Warnings) != 0 || len(plan.Trials) == 0 {
		t.Errorf("%d trials, warnings %q", len(plan.Trials), plan.Warnings)
	}
	count := map[string]int{}
	for _, tr := range plan.Trials {
		count[tr.Method]++
	}
	for _, m := range []string{"lora", "rslora", "dora", "vera", "full", "loraplus"} {
		if count[m] == 0 {
			t.Errorf("the example has no %s trial: %v", m, count)
		}
	}
	t.Logf("%d trials: %v", len(plan.Trials), count)
}
