package sweeps

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestTrainerEnvKeepsIDs: a command trainer's env is how a trial runs, not
// what it computes, so it is not part of the trial ID (the command is), and
// docs/trainer-protocol.md and this package's doc say so.
func TestTrainerEnvKeepsIDs(t *testing.T) {
	const src = `
seeds = 2
[grid]
method = ["lora", "full"]
rank = [4]
task = ["mlp"]
[trainer]
kind = "command"
command = ["./train"%s]
%s
`
	ids := func(cmdArg, env string) []string {
		p := mustParse(t, fmt.Sprintf(src, cmdArg, env))
		var out []string
		for _, tr := range p.Trials {
			out = append(out, tr.ID)
		}
		return out
	}
	ref := ids("", "")
	for _, env := range []string{
		`env = { CACHE = "/scratch/a" }`,
		`env = { CACHE = "/scratch/b", HF_HOME = "/data/hf" }`,
	} {
		if got := ids("", env); !slices.Equal(got, ref) {
			t.Errorf("%s changed the trial IDs: %v, want %v", env, got, ref)
		}
	}
	if got := ids(`, "--lr-scale=2"`, `env = { CACHE = "/scratch/a" }`); slices.Equal(got, ref) {
		t.Error("changing the command kept the trial IDs")
	}

	for _, f := range []struct{ path, want string }{
		{"../docs/trainer-protocol.md", "changing the env keeps\nthe trial IDs"},
		{"doc.go", "an external trainer's env"},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), f.want) {
			t.Errorf("%s no longer says %q; keep it true to the trial ID", f.path, f.want)
		}
	}
}
