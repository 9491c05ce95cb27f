package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/results"
	"peftbench/sweeps"
	"peftbench/tasks"
)

// TestSpectraHookConfinesArtifacts: a weights artifact outside the trial
// folder (absolute, or escaping with ..) fails the trial naming the
// artifact; the file outside is never read.
func TestSpectraHookConfinesArtifacts(t *testing.T) {
	cache, err := tasks.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plan := &sweeps.Plan{}
	plan.Analysis.Spectra = true
	hook := spectraHook(plan, cache)
	root := t.TempDir()
	dir := filepath.Join(root, "trial")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(root, "outside.safetensors")
	if err := os.WriteFile(outside, []byte("not read"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{outside, "../outside.safetensors"} {
		err := hook(context.Background(), sweeps.Trial{ID: "x"}, dir, map[string]string{"weights": rel}, &results.Shard{})
		if err == nil || !strings.Contains(err.Error(), "artifact weights") || !strings.Contains(err.Error(), "not inside the trial folder") {
			t.Errorf("weights at %q: err = %v, want a refusal naming the artifact", rel, err)
		}
	}
}
