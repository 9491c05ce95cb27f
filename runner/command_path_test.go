package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// TestCommandBesideSweep: command = ["./prog"] runs the prog beside the
// sweep file, never a prog on PATH, even when the sweep file is in the
// working directory (filepath.Join(".", "./prog") is the bare "prog"). The
// trial log records the program's absolute path and its SHA-256.
func TestCommandBesideSweep(t *testing.T) {
	root := t.TempDir()
	sweepDir, binDir := filepath.Join(root, "sweep"), filepath.Join(root, "bin")
	for _, d := range []string{sweepDir, binDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ours := filepath.Join(sweepDir, "prog")
	writeScript(t, ours, `echo '{"type":"summary","metrics":{"target_loss":1}}'`+"\n")
	writeScript(t, filepath.Join(binDir, "prog"), `echo '{"type":"summary","metrics":{"target_loss":2}}'`+"\n")
	t.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Chdir(sweepDir)

	plan := testPlan("beside", 1)
	plan.File = "beside.toml" // loaded from the working directory
	plan.Trainer = sweeps.TrainerSpec{Kind: "command", Command: []string{"./prog"}}
	sum, err := Run(context.Background(), plan, testOptions(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	id := plan.Trials[0].ID
	s := shards(t, sum.Dir)[id]
	if s.Trial.Status != results.StatusOK || s.Trial.TargetLoss != 1 {
		t.Fatalf("status %s %q, target_loss %v: want ok and 1, from the prog beside the sweep (2 is PATH's)",
			s.Trial.Status, s.Trial.Error, s.Trial.TargetLoss)
	}
	assertFile(t, filepath.Join(results.ShardDir(sum.Dir, id), "trial.log"),
		"trainer program "+ours+" sha256 "+sha256File(t, ours))

	// A bare name is still looked up on PATH.
	c, err := NewCommand(sweeps.TrainerSpec{Kind: "command", Command: []string{"prog"}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(binDir, "prog"); c.Path != want {
		t.Errorf("bare prog resolved to %s, want PATH's %s", c.Path, want)
	}
	// A name with a slash that is not beside the sweep is an error, not a
	// PATH lookup.
	if _, err := NewCommand(sweeps.TrainerSpec{Kind: "command", Command: []string{"./prog"}}, binDir+"/../none"); err == nil {
		t.Errorf("./prog in a folder without one resolved")
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Skip("no sha256sum:", err)
	}
	sum, _, _ := strings.Cut(string(out), " ")
	return sum
}

// TestDetachedChildKeepsStdout: a trainer that prints its summary and exits,
// leaving a child in another session that holds its stdout open, is ok: once
// the trainer exited, closing its output is the end of the stream. The
// trial does not wait for the child.
func TestDetachedChildKeepsStdout(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid:", err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "trainer.sh")
	pidFile := filepath.Join(dir, "child.pid")
	writeScript(t, script, `
echo '{"type":"metric","step":1,"split":"train","name":"loss","value":0.5}'
echo '{"type":"summary","metrics":{"target_loss":0.25}}'
setsid sh -c 'echo $$ > '`+pidFile+`'; exec sleep 60' &
while [ ! -s `+pidFile+` ]; do sleep 0.01; done   # the child is in its own session
exit 0
`)
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	plan := testPlan("detached", 1)
	plan.Trainer = sweeps.TrainerSpec{Kind: "command", Command: []string{script}}
	start := time.Now()
	sum, err := Run(context.Background(), plan, testOptions(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("took %v: the runner waited for the detached child", el)
	}
	id := plan.Trials[0].ID
	s := shards(t, sum.Dir)[id]
	if s.Trial.Status != results.StatusOK || s.Trial.TargetLoss != 0.25 {
		t.Fatalf("status %s %q, target_loss %v; want ok with the summary", s.Trial.Status, s.Trial.Error, s.Trial.TargetLoss)
	}
	assertFile(t, filepath.Join(results.ShardDir(sum.Dir, id), "trial.log"), "output stayed open after it exited")
}
