package trainer_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/sweeps"
	"peftbench/trainer"
)

func TestExploded(t *testing.T) {
	for _, c := range []struct {
		initial, loss float64
		want          bool
	}{
		{2.3, 2.3, false}, {2.3, 2299, false}, {2.3, 2301, true}, {2.3, 1e27, true},
		{0.01, 900, false}, {0.01, 1001, true}, // the initial loss is floored at 1
		{2.3, math.Inf(1), true}, {2.3, math.NaN(), false}, // non-finite losses are checked apart
	} {
		if got := trainer.Exploded(c.initial, c.loss); got != c.want {
			t.Errorf("Exploded(%v, %v) = %v, want %v", c.initial, c.loss, got, c.want)
		}
	}
}

func TestDivergedError(t *testing.T) {
	for _, c := range []struct {
		err  *trainer.DivergedError
		want string
	}{
		{&trainer.DivergedError{Step: 3}, "diverged at step 3"},
		{&trainer.DivergedError{Step: 3, Tensor: "loss"}, "diverged at step 3: non-finite loss"},
		{&trainer.DivergedError{Step: 3, Tensor: "loss", Reason: "loss 1e9 exceeds"}, "diverged at step 3: loss 1e9 exceeds"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", *c.err, got, c.want)
		}
	}
}

// TestTrialFile: what WriteTrialFile writes, ReadTrialFile reads back; the
// JSON keys are the protocol's (docs/trainer-protocol.md); another protocol
// version or a trial without a method or task is refused.
func TestTrialFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "trial.json")
	tf := trainer.TrialFile{
		Protocol: trainer.Protocol,
		Trial:    sweeps.Trial{Sweep: "s", ID: "abc", Method: "lora", Task: "teacher-shift", Seed: 2},
		Threads:  2, Devices: []string{"0"}, Out: dir,
	}
	if err := trainer.WriteTrialFile(path, tf); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(b), "}\n") || !strings.Contains(string(b), "\n  \"protocol\": 1,\n") {
		t.Errorf("trial file:\n%s", b)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"protocol", "trial", "threads", "devices", "out"} {
		if _, ok := keys[k]; !ok || len(keys) != 5 {
			t.Errorf("trial file keys %v, want protocol, trial, threads, devices, out", keys)
		}
	}
	got, err := trainer.ReadTrialFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Trial.ID != "abc" || got.Trial.Method != "lora" || got.Threads != 2 || got.Out != dir || len(got.Devices) != 1 {
		t.Errorf("read back %+v", got)
	}

	for name, edit := range map[string]func(*trainer.TrialFile){
		"protocol 2": func(tf *trainer.TrialFile) { tf.Protocol = 2 },
		"no method":  func(tf *trainer.TrialFile) { tf.Trial.Method = "" },
		"no task":    func(tf *trainer.TrialFile) { tf.Trial.Task = "" },
	} {
		bad := tf
		edit(&bad)
		if err := trainer.WriteTrialFile(path, bad); err != nil {
			t.Fatal(err)
		}
		if _, err := trainer.ReadTrialFile(path); err == nil {
			t.Errorf("%s: read without an error", name)
		}
	}
	if _, err := trainer.ReadTrialFile(filepath.Join(dir, "none.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
