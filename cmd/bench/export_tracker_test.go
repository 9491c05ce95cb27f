package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportTracker runs bench export-tracker on two copies of the
// export-table fixture (a failed trial, a method without rank, an
// infinite forgetting): both formats write their files, a repeated sweep
// name gets its own folder and experiment, and wrong arguments are usage
// errors. The formats themselves are tested in package tracker.
func TestExportTracker(t *testing.T) {
	dir, rows := exportFixture(t)
	out := t.TempDir()
	for _, format := range []string{"tensorboard", "mlflow"} {
		var stdout, stderr bytes.Buffer
		if err := runExportTracker([]string{dir, dir, "--format", format, "--out", filepath.Join(out, format)}, &stdout, &stderr); err != nil {
			t.Fatalf("%s: %v\n%s", format, err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "wrote 10 trials of 2 sweeps") {
			t.Errorf("%s: stdout %q", format, stdout.String())
		}
	}
	events, _ := filepath.Glob(filepath.Join(out, "tensorboard", "export*", "*", "events.out.tfevents.*.peftbench"))
	if len(events) != 2*len(rows) {
		t.Errorf("%d trial event files, want %d: %v", len(events), 2*len(rows), events)
	}
	if _, err := os.Stat(filepath.Join(out, "tensorboard", "export-2")); err != nil {
		t.Errorf("the second copy's folder: %v", err)
	}
	metas, _ := filepath.Glob(filepath.Join(out, "mlflow", "mlruns", "*", "meta.yaml"))
	if len(metas) != 3 {
		t.Errorf("%d experiments, want Default and two sweeps: %v", len(metas), metas)
	}
	inf, _ := filepath.Glob(filepath.Join(out, "mlflow", "mlruns", "*", "*", "metrics", "forgetting"))
	found := false
	for _, p := range inf {
		b, _ := os.ReadFile(p)
		found = found || strings.Contains(string(b), " inf ")
	}
	if !found {
		t.Errorf("no forgetting metric written as Python's inf among %d", len(inf))
	}

	for _, args := range [][]string{{"--format", "mlflow"}, {dir, "--format", "wandb"}, {dir}} {
		err := runExportTracker(args, &bytes.Buffer{}, &bytes.Buffer{})
		var ue interface{ ExitCode() int }
		if !errors.As(err, &ue) || ue.ExitCode() != 2 {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
