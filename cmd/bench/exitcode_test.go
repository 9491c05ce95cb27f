package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/runner"
)

// built is the bench binary the tests share, built once per test binary.
var built struct {
	once       sync.Once
	path, skip string
	err        error
}

// benchBinary builds bench (once for all the package's tests) and returns
// its path; $PEFTBENCH_TEST_BENCH names a prebuilt binary instead (to try
// these tests against another version). The tests that use it skip under
// -short.
func benchBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the bench binary")
	}
	if b := os.Getenv("PEFTBENCH_TEST_BENCH"); b != "" {
		return b
	}
	built.once.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			built.skip = "no go command to build bench with"
			return
		}
		// A folder of its own rather than a test's TempDir, which would go
		// with the first test to ask; the OS temp folder holds it after.
		dir, err := os.MkdirTemp("", "bench-test-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "bench")
		if out, err := exec.Command(gobin, "build", "-o", built.path, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	switch {
	case built.skip != "":
		t.Skip(built.skip)
	case built.err != nil:
		t.Fatal(built.err)
	}
	return built.path
}

// sleepingTrainer is a command trainer that reports one step, marks its
// trial folder "ready" and sleeps until killed.
const sleepingTrainer = "#!/bin/sh\n" +
	"echo '{\"type\":\"metric\",\"step\":1,\"split\":\"train\",\"name\":\"loss\",\"value\":1}'\n" +
	"touch \"$PEFTBENCH_OUT/ready\"\nexec sleep 60\n"

// status is the exit status of a finished command: its code, or 128 + the
// signal that killed it, as a shell reports it.
func status(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return -1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// TestExitCodes runs the bench binary over every command's help, usage
// errors and failures and checks the exit status: 0 for success and help,
// 1 for a failure (bench regress: regressions found, only), 2 for usage
// errors (bench regress: anything that kept it from comparing).
func TestExitCodes(t *testing.T) {
	bench := benchBinary(t)
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("trainer.sh", "#!/bin/sh\necho '{\"type\":\"summary\",\"metrics\":{\"target_loss\":0.5}}'\n", 0o755)
	local := write("local.toml", `name = "local"
seeds = 1
[grid]
method = ["lora"]
rank = [4]
task = ["teacher-shift"]
[trainer]
kind = "command"
command = ["./trainer.sh"]
`, 0o644)
	bad, err := filepath.Abs("testdata/bad/bad_name.toml")
	if err != nil {
		t.Fatal(err)
	}
	base, same, worse := t.TempDir(), t.TempDir(), t.TempDir()
	writeSweep(t, base, 1, 5, 1)
	writeSweep(t, same, 2, 5, 1)
	writeSweep(t, worse, 2, 5, 0.9)
	garbage := filepath.Dir(write("garbage/"+results.TrialsFile, "not parquet", 0o644))
	missing := filepath.Join(dir, "missing")
	perfA := write("a.json", `[{"name":"x","value":1,"unit":"s"}]`, 0o644)
	refused := t.TempDir() // --out of the runs that must not run
	cache := t.TempDir()

	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		// bench itself
		{"no command", nil, 2},
		{"unknown command", []string{"rn"}, 2},
		{"-h", []string{"-h"}, 0},
		{"--help", []string{"--help"}, 0},
		{"help", []string{"help"}, 0},
		{"help CMD", []string{"help", "run"}, 0},
		{"help regress", []string{"help", "regress"}, 0},
		{"help unknown CMD", []string{"help", "rn"}, 2},
		{"help two CMDs", []string{"help", "run", "plan"}, 2},

		// run and plan
		{"run -h", []string{"run", "-h"}, 0},
		{"run --help", []string{"run", "--help"}, 0},
		{"run bad flag", []string{"run", "--bogus", local}, 2},
		{"run bad flag value", []string{"run", "--workers", "two", local}, 2},
		{"run no file", []string{"run"}, 2},
		{"run two files", []string{"run", local, local}, 2},
		{"run malformed sweep", []string{"run", bad, "--out", refused}, 1},
		{"run missing sweep", []string{"run", filepath.Join(dir, "nope.toml"), "--out", refused}, 1},
		{"run --detach local sweep", []string{"run", "--detach", local, "--out", refused, "--cache", cache}, 2},
		{"plan -h", []string{"plan", "-h"}, 0},
		{"plan no file", []string{"plan"}, 2},
		{"plan bad flag", []string{"plan", "--bogus", local}, 2},
		{"plan ok", []string{"plan", local}, 0},

		// commands on a results folder
		{"status -h", []string{"status", "-h"}, 0},
		{"status no DIR", []string{"status"}, 2},
		{"status two DIRs", []string{"status", base, base}, 2},
		{"status bad flag", []string{"status", "--bogus", base}, 2},
		{"status not a results folder", []string{"status", missing}, 1},
		{"fit no DIR", []string{"fit"}, 2},
		{"fit bad flag", []string{"fit", "--bogus", base}, 2},
		{"plot no DIR", []string{"plot"}, 2},
		{"report extra argument", []string{"report", base, "more"}, 2},
		{"intruders -h", []string{"intruders", "-h"}, 0},
		{"intruders no DIR", []string{"intruders"}, 2},

		// the others
		{"methods extra argument", []string{"methods", "more"}, 2},
		{"tasks bad flag", []string{"tasks", "--bogus"}, 2},
		{"tasks ok", []string{"tasks"}, 0},
		{"perf -h", []string{"perf", "-h"}, 0},
		{"export -h", []string{"export", "-h"}, 0},
		{"export no flags", []string{"export"}, 2},
		{"spectra bad flag", []string{"spectra", "--bogus"}, 2},
		{"spectra without --base", []string{"spectra", "--tuned", "x.safetensors"}, 2},
		{"trial -h", []string{"trial", "-h"}, 0},
		{"trial no flags", []string{"trial"}, 2},
		{"trial extra argument", []string{"trial", "--sweep", base, "--index", "0", "more"}, 2},
		{"trial bad attempt", []string{"trial", "--sweep", base, "--index", "0", "--attempt", "0"}, 2},
		{"trial not submitted", []string{"trial", "--sweep", base, "--index", "0"}, 1},

		// regress: 1 is "regressions found", and only that
		{"regress no regression", []string{"regress", "--baseline", base, "--current", same}, 0},
		{"regress regression", []string{"regress", "--baseline", base, "--current", worse}, 1},
		{"regress -h", []string{"regress", "-h"}, 0},
		{"regress no flags", []string{"regress"}, 2},
		{"regress bad flag", []string{"regress", "--bogus", "--baseline", base, "--current", same}, 2},
		{"regress bad alpha", []string{"regress", "--alpha", "2", "--baseline", base, "--current", same}, 2},
		{"regress bad format", []string{"regress", "--format", "xml", "--baseline", base, "--current", same}, 2},
		{"regress extra argument", []string{"regress", "--baseline", base, "--current", same, "more"}, 2},
		{"regress missing baseline", []string{"regress", "--baseline", missing, "--current", same}, 2},
		{"regress missing current", []string{"regress", "--baseline", base, "--current", missing}, 2},
		{"regress unreadable table", []string{"regress", "--baseline", base, "--current", garbage}, 2},
		{"regress mixed kinds", []string{"regress", "--baseline", base, "--current", perfA}, 2},
		{"regress missing perf file", []string{"regress", "--baseline", perfA, "--current", filepath.Join(dir, "b.json")}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bench, tc.args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PEFTBENCH_CACHE="+cache)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			got := status(cmd.Run())
			if got != tc.want {
				t.Errorf("bench %s: exit status %d, want %d\nstdout: %s\nstderr: %s",
					strings.Join(tc.args, " "), got, tc.want, firstLines(stdout.String(), 5), firstLines(stderr.String(), 5))
			}
		})
	}
	if entries, _ := os.ReadDir(refused); len(entries) > 0 {
		t.Errorf("a refused run left %s in its results folder", entries[0].Name())
	}
}

// TestRunDetachLocal: --detach on a sweep that does not run on Slurm is
// refused before anything is written, with the reason.
func TestRunDetachLocal(t *testing.T) {
	dir := t.TempDir()
	sweep := filepath.Join(dir, "local.toml")
	src := "name = \"detach\"\nseeds = 1\n[grid]\nmethod = [\"lora\"]\nrank = [4]\ntask = [\"teacher-shift\"]\n"
	if err := os.WriteFile(sweep, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, extra := range []string{"", "[executor]\nkind = \"local\"\n"} {
		if err := os.WriteFile(sweep, []byte(src+extra), 0o644); err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		err := run([]string{"run", sweep, "--detach", "--out", out, "--cache", t.TempDir()}, &stdout, &stderr)
		if err == nil {
			t.Fatal("bench run --detach on a local sweep succeeded")
		}
		if !strings.Contains(err.Error(), "--detach needs an executor that can detach (kind = \"slurm\"); sweep \"detach\" runs on the local executor") {
			t.Errorf("error: %v", err)
		}
		if got := exitStatus(err, false); got != 2 {
			t.Errorf("exit status %d, want 2", got)
		}
		if entries, _ := os.ReadDir(out); len(entries) > 0 {
			t.Errorf("bench run left %s in the results folder", entries[0].Name())
		}
	}
}

// TestWaitingCommandsInterrupted builds bench and signals the commands that
// wait, other than bench run (TestRunInterrupted): bench status following
// a Slurm sweep (fake sbatch and squeue, the array forever running) and
// bench trial running a trial (a command trainer that sleeps). Each must
// exit 130 on SIGINT and 143 on SIGTERM; the trial is recorded cancelled.
func TestWaitingCommandsInterrupted(t *testing.T) {
	bench := benchBinary(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	fakes := map[string]string{
		"sbatch": "#!/bin/sh\necho 42\n",
		// Every task of array 42 runs forever; each poll touches a marker.
		"squeue":     "#!/bin/sh\ntouch \"$FAKE_SLURM_POLLED\"\nfor i in 0 1; do echo \"42_$i 42 $i RUNNING None\"; done\n",
		"trainer.sh": sleepingTrainer,
	}
	for name, text := range fakes {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	sweep := filepath.Join(bin, "slurm.toml")
	src := `name = "waits"
seeds = 2
[grid]
method = ["lora"]
rank = [4]
task = ["teacher-shift"]
[executor]
kind = "slurm"
poll_every = "100ms"
[trainer]
kind = "command"
command = ["./trainer.sh"]
`
	if err := os.WriteFile(sweep, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := loadPlan(sweep)
	if err != nil {
		t.Fatal(err)
	}
	submit := func(t *testing.T) string {
		sum, err := runner.RunSlurm(context.Background(), plan, runner.SlurmOptions{
			Options: runner.Options{Out: t.TempDir(), Detach: true}, Worker: []string{bench}})
		if err != nil {
			t.Fatal(err)
		}
		return sum.Dir
	}

	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		code int
	}{{"SIGINT", syscall.SIGINT, 130}, {"SIGTERM", syscall.SIGTERM, 143}} {
		t.Run("status/"+tc.name, func(t *testing.T) {
			sweepDir := submit(t)
			polled := filepath.Join(t.TempDir(), "polled")
			cmd := exec.Command(bench, "status", sweepDir)
			cmd.Env = append(os.Environ(), "FAKE_SLURM_POLLED="+polled)
			signalWhenReady(t, cmd, polled, tc.sig, tc.code)
		})
		t.Run("trial/"+tc.name, func(t *testing.T) {
			sweepDir := submit(t)
			cmd := exec.Command(bench, "trial", "--sweep", sweepDir, "--index", "1")
			cmd.Env = append(os.Environ(), "PEFTBENCH_CACHE="+t.TempDir())
			ready := filepath.Join(sweepDir, results.TrialsDir, plan.Trials[1].ID, "ready")
			signalWhenReady(t, cmd, ready, tc.sig, tc.code)
			s, err := results.ReadShard(sweepDir, plan.Trials[1].ID)
			if err != nil {
				t.Fatal(err)
			}
			if s.Trial.Status != results.StatusCancelled {
				t.Errorf("trial recorded %s %q, want cancelled", s.Trial.Status, s.Trial.Error)
			}
		})
	}
}

// signalWhenReady starts cmd, sends it sig once the file ready exists and
// checks that it exits with status code within 15 s.
func signalWhenReady(t *testing.T, cmd *exec.Cmd, ready string, sig syscall.Signal, code int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(20 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("%s ended before it was ready: %v\n%s", cmd.Args, err, stderr.String())
		case <-deadline:
			cmd.Process.Kill()
			<-exited
			t.Fatalf("%s not ready within 20s\n%s", cmd.Args, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(50 * time.Millisecond) // into the wait
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if got := status(err); got != code {
			t.Errorf("%s after %s: exit status %d, want %d\nstderr: %s", cmd.Args[1], sig, got, code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("%s did not exit within 15s of %s\n%s", cmd.Args, sig, stderr.String())
	}
}

// firstLines is s up to its n-th line.
func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}
