package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefusesBadSweeps runs `bench run` on every malformed sweep under
// testdata/bad (each names its expected error in a first-line "# want:"
// comment, file:line:col first): each must fail with that error and leave
// no results folder behind.
func TestRunRefusesBadSweeps(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("%d malformed sweeps, want at least 20", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantLine(t, f)
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			err := run([]string{"run", f, "--out", out, "--cache", t.TempDir()}, &stdout, &stderr)
			if err == nil {
				t.Fatal("bench run succeeded")
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
			}
			entries, _ := os.ReadDir(out)
			if len(entries) > 0 {
				t.Errorf("bench run left %d entries in the results folder (%s)", len(entries), entries[0].Name())
			}
		})
	}
}

func wantLine(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "# want: ") {
		t.Fatalf("%s: first line is not a # want: comment", path)
	}
	return strings.TrimPrefix(sc.Text(), "# want: ")
}
