package runner

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// TestCommandTrainer runs scripted trainers through a one-trial sweep and
// checks how each ends.
func TestCommandTrainer(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		timeout time.Duration
		status  string
		errHas  []string
		check   func(t *testing.T, s *results.Shard, dir string)
	}{
		{name: "ok", status: results.StatusOK, script: `
[ "$PEFTBENCH_PROTOCOL" = 1 ] || exit 9
grep -q '"protocol": 1' "$PEFTBENCH_TRIAL" || exit 8
grep -q '"method": "lora"' "$PEFTBENCH_TRIAL" || exit 7
echo weights > "$PEFTBENCH_OUT/tuned.bin"
echo '{"type":"log","msg":"hello from the trainer"}'
echo '{"type":"metric","step":1,"split":"train","name":"loss","value":0.5}'
echo '{"type":"metric","step":2,"split":"train","name":"loss","value":0.25}'
echo '{"type":"artifact","name":"weights","path":"tuned.bin"}'
echo '{"type":"summary","metrics":{"target_loss":0.25,"threads":'"$PEFTBENCH_THREADS"'}}'
echo 'library chatter' >&2
`, check: func(t *testing.T, s *results.Shard, dir string) {
			if len(s.Steps) != 2 || s.Steps[1].Value != 0.25 || s.Trial.TargetLoss != 0.25 || s.Trial.Steps != 2 {
				t.Errorf("shard: %d steps, target_loss %v, steps %d", len(s.Steps), s.Trial.TargetLoss, s.Trial.Steps)
			}
			if s.Trial.Extra["threads"] != 3 {
				t.Errorf("PEFTBENCH_THREADS = %v, want 3", s.Trial.Extra["threads"])
			}
			assertFile(t, filepath.Join(dir, "trial.log"), "hello from the trainer", "artifact weights: tuned.bin")
			assertFile(t, filepath.Join(dir, "stderr.log"), "library chatter")
		}},
		{name: "crash", status: results.StatusFailed, errHas: []string{"exit status 3", "stderr ends:", "CUDA out of memory"}, script: `
echo '{"type":"metric","step":1,"split":"train","name":"loss","value":0.5}'
echo 'Traceback (most recent call last):' >&2
echo 'RuntimeError: CUDA out of memory' >&2
exit 3
`},
		{name: "malformed line", status: results.StatusFailed, errHas: []string{"trainer protocol", "stdout line 2", "not json"}, script: `
echo '{"type":"metric","step":1,"split":"train","name":"loss","value":0.5}'
echo 'not json'
echo '{"type":"summary","metrics":{"target_loss":0.25}}'
`},
		{name: "unknown field", status: results.StatusFailed, errHas: []string{"stdout line 1", "unknown field"}, script: `
echo '{"type":"metric","step":1,"split":"train","name":"loss","value":0.5,"epoch":1}'
`},
		{name: "unknown type", status: results.StatusFailed, errHas: []string{`unknown message type "progress"`}, script: `
echo '{"type":"progress"}'
`},
		{name: "metric without step", status: results.StatusFailed, errHas: []string{`metric needs "step"`}, script: `
echo '{"type":"metric","split":"train","name":"loss","value":0.5}'
`},
		{name: "exit 0 without summary", status: results.StatusFailed, errHas: []string{"exited 0 without a summary line"}, script: `
echo '{"type":"metric","step":1,"split":"train","name":"loss","value":0.5}'
`},
		{name: "diverged message", status: results.StatusDiverged, errHas: []string{"diverged at step 12", "lora_B.grad"}, script: `
echo '{"type":"diverged","step":12,"tensor":"lora_B.grad"}'
sleep 30
`},
		{name: "NaN loss", status: results.StatusDiverged, errHas: []string{"diverged at step 4"}, script: `
echo '{"type":"metric","step":3,"split":"train","name":"loss","value":1.5}'
echo '{"type":"metric","step":4,"split":"train","name":"loss","value":"NaN"}'
sleep 30
`},
		{name: "stderr flood", status: results.StatusOK, script: `
head -c 8000000 /dev/zero | tr '\0' 'x' >&2
echo 'last words' >&2
echo '{"type":"summary","metrics":{"target_loss":0.25}}'
`, check: func(t *testing.T, s *results.Shard, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, "stderr.log"))
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > 1<<20+100 || !bytes.Contains(b, []byte("bytes of stderr dropped")) || !bytes.HasSuffix(b, []byte("last words\n")) {
				t.Errorf("stderr.log: %d bytes, want ≤ 1 MiB with a drop marker and the tail", len(b))
			}
		}},
		{name: "timeout kills the group", status: results.StatusTimeout, timeout: 300 * time.Millisecond, errHas: []string{"timed out after 300ms"}, script: `
sleep 60 &
echo $! > "$PEFTBENCH_OUT/child.pid"
wait
`, check: func(t *testing.T, s *results.Shard, dir string) {
			assertGone(t, filepath.Join(dir, "child.pid"))
		}},
		{name: "orphan killed on exit", status: results.StatusOK, script: `
sleep 60 &
echo $! > "$PEFTBENCH_OUT/child.pid"
echo '{"type":"summary","metrics":{"target_loss":0.25}}'
`, check: func(t *testing.T, s *results.Shard, dir string) {
			assertGone(t, filepath.Join(dir, "child.pid"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			script := filepath.Join(t.TempDir(), "trainer.sh")
			writeScript(t, script, tc.script)
			plan := testPlan("cmd", 1)
			plan.Trainer = sweeps.TrainerSpec{Kind: "command", Command: []string{script}}
			plan.Resources.Timeout = tc.timeout
			plan.Resources.ThreadsPerTrial = 3
			opts := testOptions(t, nil)
			opts.Grace = 10 * time.Second
			start := time.Now()
			sum, err := Run(context.Background(), plan, opts)
			if err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el > 15*time.Second {
				t.Errorf("took %v: a killed trainer was waited for", el)
			}
			id := plan.Trials[0].ID
			s := shards(t, sum.Dir)[id]
			if s.Trial.Status != tc.status {
				t.Fatalf("status %s (%s), want %s", s.Trial.Status, s.Trial.Error, tc.status)
			}
			for _, w := range tc.errHas {
				if !strings.Contains(s.Trial.Error, w) {
					t.Errorf("error %q lacks %q", s.Trial.Error, w)
				}
			}
			if tc.check != nil {
				tc.check(t, s, results.ShardDir(sum.Dir, id))
			}
		})
	}
}

func assertFile(t *testing.T, path string, want ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(string(b), w) {
			t.Errorf("%s lacks %q:\n%s", filepath.Base(path), w, b)
		}
	}
}

// assertGone checks that the process whose pid the file holds is dead.
func assertGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if zombie(pid) { // killed; its parent (the shell) died before reaping it
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d outlived its trial", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

func TestNumber(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		err  bool
	}{
		{"0.5", 0.5, false}, {"-3", -3, false}, {"1e-8", 1e-8, false},
		{`"NaN"`, math.NaN(), false}, {`"Inf"`, math.Inf(1), false}, {`"-Inf"`, math.Inf(-1), false},
		{`"fast"`, 0, true}, {"true", 0, true}, {"", 0, true}, {"null", 0, true},
	}
	for _, tc := range tests {
		got, err := number([]byte(tc.in))
		if (err != nil) != tc.err {
			t.Errorf("number(%s) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if !tc.err && !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("number(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBoundedBuffer(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"fits", 10, []string{"abc", "de"}, "abcde"},
		{"head and tail", 6, []string{"abcdefgh"}, "abc\n… 2 bytes of stderr dropped …\nfgh"},
		{"small writes", 6, []string{"ab", "cd", "ef", "gh", "ij"}, "abc\n… 4 bytes of stderr dropped …\nhij"},
		{"big write after ring full", 6, []string{"abcdef", "0123456789"}, "abc\n… 10 bytes of stderr dropped …\n789"},
	}
	for _, tc := range tests {
		b := &boundedBuffer{max: tc.max}
		for _, w := range tc.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("%s: Write = %d, %v", tc.name, n, err)
			}
		}
		if got := string(b.Bytes()); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
