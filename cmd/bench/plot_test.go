package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// plotsFixtureCopy copies the plots package's committed results fixture into a
// temporary results folder.
func plotsFixtureCopy(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "plots", "testdata", "fixture")
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPlotCommand(t *testing.T) {
	dir := plotsFixtureCopy(t)
	for _, tc := range []struct {
		name  string
		args  []string
		files []string // expected in DIR/figures, sorted
	}{
		{"only one kind, one format", []string{dir, "--only", "metric-vs-rank", "--format", "svg"},
			[]string{"metric-vs-rank-safety-guard.svg", "metric-vs-rank-teacher-shift.svg"}},
		{"flags first, two kinds", []string{"--format=png,pdf", "--only=safety,efficiency", dir},
			[]string{"efficiency-safety-guard.pdf", "efficiency-safety-guard.png", "efficiency-teacher-shift.pdf",
				"efficiency-teacher-shift.png", "safety-safety-guard.pdf", "safety-safety-guard.png"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(filepath.Join(dir, "figures"))
			var out, errb bytes.Buffer
			if err := runPlot(tc.args, &out, &errb); err != nil {
				t.Fatalf("%v\n%s", err, errb.String())
			}
			ents, err := os.ReadDir(filepath.Join(dir, "figures"))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range ents {
				got = append(got, e.Name())
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tc.files, " ") {
				t.Errorf("figures = %v, want %v", got, tc.files)
			}
			if n := strings.Count(out.String(), "\n"); n != len(tc.files) {
				t.Errorf("printed %d paths, want %d:\n%s", n, len(tc.files), out.String())
			}
		})
	}
}

func TestPlotCommandErrors(t *testing.T) {
	dir := plotsFixtureCopy(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing results folder"},
		{[]string{dir, "--only", "pie-chart"}, `unknown figure "pie-chart"`},
		{[]string{dir, "--format", "gif"}, `unknown format "gif"`},
		{[]string{dir, "extra"}, `unexpected argument "extra"`},
		{[]string{filepath.Join(dir, "nope")}, "not a results folder"},
	} {
		var out, errb bytes.Buffer
		err := runPlot(tc.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench plot %q: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); err == nil {
		t.Error("a failed bench plot created the missing results folder")
	}
}

func TestReportCommand(t *testing.T) {
	dir := plotsFixtureCopy(t)
	var out, errb bytes.Buffer
	if err := runReport([]string{dir}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	path := filepath.Join(dir, "report.html")
	if got := strings.TrimSpace(out.String()); got != path {
		t.Errorf("printed %q, want %q", got, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{
		"<title>fixture — peftbench report</title>",
		`<a href="trials.parquet">`,
		"Task teacher-shift", "Task safety-guard",
		"loss is NaN at step 87",   // the diverged trial's reason
		"rank 2 below the minimum", // the failed trial's reason
		"L_f = c &#43; A·P^α",      // a forgetting-law fit
		`class="best"`,
		`<svg id="pareto-svg"`,                             // the Pareto view
		`<tr data-filter="teacher-shift lora r=8 rank=8">`, // rows the filter box narrows
		"degenerate fit: R² = 0.14 below 0.5",              // the N law from steps.parquet, not drawn
		"Student-t interval below 5 seeds",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if n := strings.Count(html, `<img src="data:image/png;base64,`); n != 17 {
		t.Errorf("report.html inlines %d figures, want 17", n)
	}
	if strings.Contains(html, `src="http`) || strings.Contains(html, `href="http`) {
		t.Error("report.html refers to the network; it must be self-contained")
	}
}
