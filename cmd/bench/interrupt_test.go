package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"peftbench/results"
)

// TestRunInterrupted builds bench, starts `bench run` on a sweep whose
// trials (a command trainer) run until killed, signals it once a trial is
// under way, and checks the exit status a shell expects (130 for SIGINT,
// 143 for SIGTERM) and that the interrupted trials are recorded cancelled,
// none failed.
func TestRunInterrupted(t *testing.T) {
	bench := benchBinary(t)
	dir := t.TempDir()
	trainer := filepath.Join(dir, "trainer.sh")
	if err := os.WriteFile(trainer, []byte(sleepingTrainer), 0o755); err != nil {
		t.Fatal(err)
	}
	sweep := filepath.Join(dir, "sweep.toml")
	src := `name = "interrupted"
seeds = 4
[grid]
method = ["lora"]
rank = [4]
task = ["teacher-shift"]
[resources]
workers = 2
[trainer]
kind = "command"
command = ["./trainer.sh"]
`
	if err := os.WriteFile(sweep, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		code int
	}{{"SIGINT", syscall.SIGINT, 130}, {"SIGTERM", syscall.SIGTERM, 143}} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bench, "run", sweep, "--out", out, "--cache", t.TempDir(), "--json")
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			waited := false
			defer func() {
				if !waited {
					cmd.Process.Kill()
					<-exited
				}
			}()

			// Ready when a trainer has started (it touches "ready" in its
			// trial folder); bench exiting first is a failure.
			ready := filepath.Join(out, "interrupted", results.TrialsDir, "*", "ready")
			deadline := time.Now().Add(15 * time.Second)
			for {
				if m, _ := filepath.Glob(ready); len(m) > 0 {
					break
				}
				select {
				case err := <-exited:
					waited = true
					t.Fatalf("bench run ended before any trial started: %v\n%s", err, stderr.String())
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("no trial started within 15s\n%s", stderr.String())
				}
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-exited:
				waited = true
			case <-time.After(15 * time.Second):
				t.Fatalf("bench run did not exit within 15s of %s\n%s", tc.name, stderr.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Errorf("bench run after %s: %v, want exit status %d\n%s", tc.name, err, tc.code, stderr.String())
			}

			shards, err := results.ReadShards(filepath.Join(out, "interrupted"))
			if err != nil {
				t.Fatal(err)
			}
			cancelled := 0
			for id, s := range shards {
				switch s.Trial.Status {
				case results.StatusCancelled:
					cancelled++
				default:
					t.Errorf("trial %s recorded %s %q, want cancelled", id, s.Trial.Status, s.Trial.Error)
				}
			}
			if cancelled == 0 {
				t.Errorf("no trial recorded cancelled (%d shards)", len(shards))
			}
		})
	}
}
