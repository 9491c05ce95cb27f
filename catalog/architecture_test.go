package catalog_test

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestArchitectureImports: the "imports (project)" column of the package
// table in docs/architecture.md lists exactly the project packages each
// package imports (go list's Imports, test files excluded), and every
// package with non-test Go files has a row.
func TestArchitectureImports(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: cannot run go list")
	}
	const module = "peftbench/"
	cmd := exec.Command(gobin, "list", "-f", `{{.ImportPath}}|{{len .GoFiles}}|{{join .Imports " "}}`, "./...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	want := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 || parts[1] == "0" {
			continue // test-only packages (ci) have no imports of their own
		}
		var imps []string
		for _, imp := range strings.Fields(parts[2]) {
			if rest, ok := strings.CutPrefix(imp, module); ok {
				imps = append(imps, rest)
			}
		}
		slices.Sort(imps)
		want[strings.TrimPrefix(parts[0], module)] = imps
	}

	doc, err := os.ReadFile("../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "| package | job | imports (project) |")
	if !ok {
		t.Fatal(`docs/architecture.md has no "| package | job | imports (project) |" table`)
	}
	got := map[string][]string{}
	for i, line := range strings.Split(table, "\n") {
		if i == 0 {
			continue // the rest of the header line
		}
		if !strings.HasPrefix(line, "|") {
			if i > 1 {
				break
			}
			continue
		}
		if strings.HasPrefix(line, "|---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) < 3 {
			t.Fatalf("table row %q has %d cells, want 3", line, len(cells))
		}
		pkg := strings.Trim(cells[0], "`")
		var imps []string
		if c := strings.TrimSpace(cells[len(cells)-1]); c != "—" {
			for _, imp := range strings.Split(c, ",") {
				imps = append(imps, strings.TrimSpace(imp))
			}
		}
		slices.Sort(imps)
		if _, dup := got[pkg]; dup {
			t.Errorf("docs/architecture.md: two rows for %s", pkg)
		}
		got[pkg] = imps
	}
	for pkg, imps := range want {
		doc, ok := got[pkg]
		switch {
		case !ok:
			t.Errorf("docs/architecture.md: no row for package %s (imports %s)", pkg, strings.Join(imps, ", "))
		case !slices.Equal(doc, imps):
			t.Errorf("docs/architecture.md: %s imports %q, the table says %q", pkg, strings.Join(imps, ", "), strings.Join(doc, ", "))
		}
	}
	for pkg := range got {
		if _, ok := want[pkg]; !ok {
			t.Errorf("docs/architecture.md: row for %s, which go list does not list", pkg)
		}
	}
}
