package runner_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"peftbench/catalog"
	"peftbench/results"
	"peftbench/runner"
	"peftbench/sweeps"
	"peftbench/tasks"
	"peftbench/train"
)

// peekReporter passes a trainer's reports on, and once `at` rows have
// passed reads the trial's live log back.
type peekReporter struct {
	runner.Reporter
	sweepDir, id string
	at           int
	passed       []results.StepRow
	seen         *results.Live
	shardThen    bool // a shard existed when the log was read
	err          error
}

func (p *peekReporter) Step(step int, split, metric string, value float64) {
	p.Reporter.Step(step, split, metric, value)
	p.passed = append(p.passed, results.StepRow{TrialID: p.id, Step: int64(step), Split: split, Metric: metric, Value: value})
	if len(p.passed) != p.at {
		return
	}
	p.seen, p.err = results.ReadLive(p.sweepDir, p.id)
	_, err := os.Stat(filepath.Join(results.ShardDir(p.sweepDir, p.id), "trial.parquet"))
	p.shardThen = err == nil
}

// TestLiveLogBuiltin: the builtin trainer's steps are in the live log as
// it reports them: mid-trial the log holds exactly the rows reported so
// far, in order, and no shard exists yet; after the trial the log is gone
// and the shard's steps begin with what the log held. Catches: steps
// buffered in the runner (or the log) until the attempt ends, rows
// dropped or reordered on the way, the log left behind.
func TestLiveLogBuiltin(t *testing.T) {
	const sweep = `name = "live-builtin"
seeds = [0]
[grid]
method = ["lora"]
rank = [2]
task = ["teacher-shift"]
[defaults]
steps = 40
batch = 16
lr = 3e-3
eval_every = 10
targets = ["fc1", "fc2"]
[task.teacher-shift]
pretrain_steps = 50
eval_size = 128
`
	plan, err := sweeps.Parse("live-builtin.toml", []byte(sweep), catalog.Registries{})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := tasks.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	sweepDir := filepath.Join(out, plan.Name)
	id := plan.Trials[0].ID
	builtin := runner.Builtin{T: &train.Trainer{Cache: cache, NoWeights: true}}
	var peek *peekReporter
	tr := peekTrainer(func(ctx context.Context, t sweeps.Trial, dir string, r runner.Reporter) error {
		peek = &peekReporter{Reporter: r, sweepDir: sweepDir, id: t.ID, at: 12}
		return builtin.Run(ctx, t, dir, peek)
	})
	opts := runner.Options{Out: out, Trainer: tr, CPUs: 2, Workers: 1,
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
	if _, err := runner.Run(context.Background(), plan, opts); err != nil {
		t.Fatal(err)
	}
	if peek == nil || peek.seen == nil {
		t.Fatalf("the live log was not read mid-trial (%d rows reported): %v", len(peek.passed), peek.err)
	}
	if peek.shardThen {
		t.Error("a shard existed mid-trial")
	}
	if peek.seen.Header.Attempt != 1 || len(peek.seen.Steps) != peek.at {
		t.Fatalf("mid-trial: attempt %d, %d rows in the live log; want attempt 1 and the %d reported", peek.seen.Header.Attempt, len(peek.seen.Steps), peek.at)
	}
	s, err := results.ReadShard(sweepDir, id)
	if err != nil {
		t.Fatal(err)
	}
	if s.Trial.Status != results.StatusOK {
		t.Fatalf("status %s %s", s.Trial.Status, s.Trial.Error)
	}
	if len(s.Steps) != len(peek.passed) {
		t.Errorf("shard: %d step rows, the trainer reported %d", len(s.Steps), len(peek.passed))
	}
	for i, got := range peek.seen.Steps {
		for _, want := range []results.StepRow{peek.passed[i], s.Steps[i]} {
			if got.Step != want.Step || got.Split != want.Split || got.Metric != want.Metric ||
				!(got.Value == want.Value || math.IsNaN(got.Value) && math.IsNaN(want.Value)) {
				t.Errorf("live row %d = %+v, want %+v", i, got, want)
			}
		}
	}
	if _, err := results.ReadLive(sweepDir, id); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("live log after the trial: %v, want it removed", err)
	}
}

// peekTrainer adapts a function to runner.Trainer.
type peekTrainer func(ctx context.Context, t sweeps.Trial, dir string, r runner.Reporter) error

func (f peekTrainer) Run(ctx context.Context, t sweeps.Trial, dir string, r runner.Reporter) error {
	return f(ctx, t, dir, r)
}
