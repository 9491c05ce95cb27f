package tracker_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"peftbench/catalog"
	"peftbench/results"
	"peftbench/runner"
	"peftbench/sweeps"
	"peftbench/tasks"
	"peftbench/train"
)

// fixtureSweep is a small real sweep for the builtin trainer: LoRA r=4 on
// teacher-shift at three learning rates, two seeds each. lr = 1e6
// diverges; failingTrainer fails lr = 1e-2, seed 1 after a few steps.
const fixtureSweep = `name = "track"
seeds = [0, 1]

[grid]
method = ["lora"]
rank = [4]
task = ["teacher-shift"]
lr = [3e-3, 1e-2, 1e6]

[defaults]
steps = 20
batch = 16
optimizer = "adamw"
eval_every = 10
targets = ["fc1", "fc2"]

[task.teacher-shift]
pretrain_steps = 50
eval_size = 128
`

// The annotations the fixture adds: a tag that must be escaped
// everywhere and a note with markup and a line break.
const (
	scriptTag = "<script>alert(1)</script>"
	fixNote   = "looks <b>good</b>\nsecond line"
)

// failingTrainer is the builtin trainer but for one trial, which reports
// three training steps and fails: a failed trial with partial steps.
type failingTrainer struct{ runner.Builtin }

func (f failingTrainer) Run(ctx context.Context, t sweeps.Trial, dir string, r runner.Reporter) error {
	if t.Train.LR == 1e-2 && t.Seed == 1 {
		for s := 1; s <= 3; s++ {
			r.Step(s, "train", "loss", 1/float64(s))
		}
		return errors.New("planted failure: the fixture's failing trial")
	}
	return f.Builtin.Run(ctx, t, dir, r)
}

var fixture struct {
	once sync.Once
	base string // removed by TestMain
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.base != "" {
		os.RemoveAll(fixture.base)
	}
	os.Exit(code)
}

// resultsFolder runs fixtureSweep once per test binary and returns its
// results folder (compacted, with annotations). Tests must not change it.
func resultsFolder(t *testing.T) string {
	t.Helper()
	fixture.once.Do(func() {
		fixture.base, fixture.err = os.MkdirTemp("", "peftbench-tracker-")
		if fixture.err != nil {
			return
		}
		fixture.dir, fixture.err = runFixture(fixture.base)
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.dir
}

func runFixture(base string) (string, error) {
	plan, err := sweeps.Parse("track.toml", []byte(fixtureSweep), catalog.Registries{})
	if err != nil {
		return "", err
	}
	cache, err := tasks.NewCache(filepath.Join(base, "cache"))
	if err != nil {
		return "", err
	}
	// A clock that moves 1.25 s a reading: distinct, reproducible times.
	var mu sync.Mutex
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(1250 * time.Millisecond)
		return now
	}
	opts := runner.Options{Out: filepath.Join(base, "results"), CPUs: 2, Workers: 1, Now: clock,
		Trainer: failingTrainer{runner.Builtin{T: &train.Trainer{Cache: cache, NoWeights: true}}}}
	sum, err := runner.Run(context.Background(), plan, opts)
	if err != nil {
		return "", err
	}
	rows, err := results.ReadTrials(filepath.Join(sum.Dir, results.TrialsFile))
	if err != nil {
		return "", err
	}
	// Tags on two trials of one configuration, a note on one.
	for _, r := range rows {
		if r.Status != results.StatusOK || r.Params["lr"] != 3e-3 {
			continue
		}
		tags := []string{scriptTag, "best"}
		note := fixNote
		if r.Seed == 1 {
			tags, note = []string{"keep"}, ""
		}
		if _, err := results.UpdateAnnotation(sum.Dir, r.TrialID, func(a *results.Annotation) {
			a.Tags, a.Note = tags, note
		}); err != nil {
			return "", err
		}
	}
	return sum.Dir, nil
}

// python returns Debian's python3, or skips.
func python(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("%s is missing: the independent Python reader cannot run", py)
	}
	return py
}

// runPython runs a script of testdata with args, bounded, and returns
// its standard output.
func runPython(t *testing.T, script string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python(t), append([]string{filepath.Join("testdata", script)}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, errors.New(err.Error() + ": " + stderr.String())
	}
	return out, nil
}
