package runner

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExecutorRegistry checks the registered executors and their
// capabilities: only those whose trials run outside the process detach and
// follow.
func TestExecutorRegistry(t *testing.T) {
	kinds := ExecutorKinds()
	for _, k := range []string{"local", "slurm"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("ExecutorKinds() = %v lacks %s", kinds, k)
		}
		e, err := LookupExecutor(k)
		if err != nil || e.Info().Kind != k {
			t.Errorf("LookupExecutor(%s) = %v, %v", k, e, err)
		}
	}
	if e, err := LookupExecutor(""); err != nil || e.Info().Kind != "local" {
		t.Errorf(`LookupExecutor("") = %v, %v; want the local executor`, e, err)
	}
	if _, err := LookupExecutor("slrum"); err == nil || !strings.Contains(err.Error(), `unknown executor "slrum" (did you mean "slurm"`) {
		t.Errorf("LookupExecutor(slrum) error = %v", err)
	}
	if got := FollowerKinds(); !slices.Contains(got, "slurm") || slices.Contains(got, "local") {
		t.Errorf("FollowerKinds() = %v, want slurm and not local", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering local twice did not panic")
		}
	}()
	RegisterExecutor("local", localExecutor{})
}

// TestFollowerOf checks that a results folder is followed by the executor
// that submitted it, and a local one by none.
func TestFollowerOf(t *testing.T) {
	local := t.TempDir()
	if f, ok := FollowerOf(local); ok {
		t.Errorf("FollowerOf(a local results folder) = %v", f.Info().Kind)
	}
	submitted := t.TempDir()
	if err := os.MkdirAll(filepath.Join(submitted, SlurmDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(submitted, SlurmDir, slurmStateFile), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, ok := FollowerOf(submitted); !ok || f.Info().Kind != "slurm" {
		t.Errorf("FollowerOf(a submitted folder) = %v, %v; want slurm", f, ok)
	}
}

// TestRunDetachRefused checks that an executor that cannot detach refuses
// Detach before it creates anything.
func TestRunDetachRefused(t *testing.T) {
	out := t.TempDir()
	local, _ := LookupExecutor("local")
	_, err := local.Run(context.Background(), testPlan("detach", 2), Options{Out: out, Trainer: trainerFunc(toy), Detach: true})
	if err == nil || !strings.Contains(err.Error(), "cannot detach") {
		t.Fatalf("err = %v, want a refusal to detach", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) > 0 {
		t.Errorf("refused run left %s", entries[0].Name())
	}
}
