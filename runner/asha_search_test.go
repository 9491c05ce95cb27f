package runner_test

import (
	"context"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"peftbench/catalog"
	"peftbench/results"
	"peftbench/runner"
	"peftbench/sweeps"
	"peftbench/tasks"
	"peftbench/train"
	"peftbench/trainer"
)

// searchSweep is the test case of issue 17's acceptance 2: LoRA rank 4 on
// teacher-shift, 16 random learning rates log-uniform on [1e-4, 1e-1], 90
// steps evaluated every 10. asha adds successive halving with eta 3 from
// step 10: rungs 10, 30, 90.
const searchSweep = `name = "lr-search"
seeds = [0]
[grid]
method = ["lora"]
rank = [4]
task = ["teacher-shift"]
[task.teacher-shift]
pretrain_steps = 200
eval_size = 256
[defaults]
steps = 90
batch = 32
eval_every = 10
[search]
kind = "random"
n = 16
seed = 17
lr = {log_uniform = [1e-4, 1e-1]}
`

const ashaTable = `[early_stopping]
kind = "asha"
eta = 3
min_steps = 10
`

func parseSearch(t *testing.T, name, src string) *sweeps.Plan {
	t.Helper()
	p, err := sweeps.Parse(name+".toml", []byte(strings.Replace(src, `name = "lr-search"`, `name = "`+name+`"`, 1)), catalog.Registries{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lrCurve is a deterministic validation accuracy: it rises with the steps,
// faster for larger learning rates, towards a ceiling that peaks at lr =
// 1e-2 (the shape of a learning-rate sweep; the builtin trainer's own
// curves replace it once it reports val step rows).
func lrCurve(lr float64, step int) float64 {
	l := math.Log10(lr) + 2
	return (0.95 - 0.05*l*l) * (1 - math.Exp(-float64(step)*(0.03+0.3*lr)))
}

// curveTrainer reports lrCurve as val accuracy every eval_every steps and
// honours trainer.StopAfter; steps counts the steps it trained.
type curveTrainer struct{ steps atomic.Int64 }

func (c *curveTrainer) Run(ctx context.Context, t sweeps.Trial, _ string, r runner.Reporter) error {
	stop := trainer.StopAfter(ctx)
	for step := 1; step <= t.Train.Steps; step++ {
		c.steps.Add(1)
		r.Step(step, "train", "loss", 1/float64(step))
		if step%t.Train.EvalEvery == 0 || step == stop {
			r.Step(step, "val", "accuracy", lrCurve(t.Train.LR, step))
		}
		if step == stop {
			return &trainer.StoppedError{Step: stop}
		}
	}
	r.Summary("val_metric", lrCurve(t.Train.LR, t.Train.Steps))
	return nil
}

// bestVal is the best val accuracy at a trial's full steps among the ok
// trials of a finished sweep.
func bestVal(t *testing.T, dir string, plan *sweeps.Plan) (best float64, okTrials int) {
	t.Helper()
	ss, err := results.ReadShards(dir)
	if err != nil {
		t.Fatal(err)
	}
	best = math.Inf(-1)
	for _, tr := range plan.Trials {
		s := ss[tr.ID]
		if s == nil || s.Trial.Status != results.StatusOK {
			continue
		}
		okTrials++
		for _, row := range s.Steps {
			if row.Step == int64(tr.Train.Steps) && row.Split == "val" && row.Metric == "accuracy" {
				best = math.Max(best, row.Value)
			}
		}
	}
	return best, okTrials
}

// checkBudget runs the 16-point search to the end and under ASHA, and
// checks that ASHA's best val accuracy is within 5% of the full search's
// using at most half its steps.
func checkBudget(t *testing.T, tr runner.Trainer, counted func() int64) {
	full := parseSearch(t, "full", searchSweep)
	asha := parseSearch(t, "asha", searchSweep+ashaTable)
	if len(full.Trials) != 16 || len(asha.Trials) != 16 {
		t.Fatalf("%d and %d trials, want 16", len(full.Trials), len(asha.Trials))
	}
	for i := range full.Trials {
		if full.Trials[i].ID != asha.Trials[i].ID {
			t.Fatalf("trial %d: [early_stopping] changed its ID", i)
		}
	}
	opts := runner.Options{Out: t.TempDir(), Trainer: tr, CPUs: 2, Workers: 2,
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
	var log strings.Builder
	opts.Log = &log
	sa, err := runner.Run(context.Background(), asha, opts)
	if err != nil {
		t.Fatal(err)
	}
	if counted == nil {
		counted = func() int64 { return 0 }
	}
	ashaCounted := counted()
	sf, err := runner.Run(context.Background(), full, opts)
	if err != nil {
		t.Fatal(err)
	}
	fullCounted := counted() - ashaCounted
	bf, nf := bestVal(t, sf.Dir, full)
	ba, na := bestVal(t, sa.Dir, asha)
	t.Logf("full search: best val accuracy %.4f over %d trials, %d steps; ASHA: %.4f over %d trials run to the end, %d steps (%.1f%%); %s",
		bf, nf, sa.FullSteps, ba, na, sa.StepsExecuted, 100*float64(sa.StepsExecuted)/float64(sa.FullSteps), strings.TrimSpace(log.String()))
	if nf != 16 {
		t.Errorf("the full search ended %d trials ok, want 16", nf)
	}
	if !(ba >= 0.95*bf) {
		t.Errorf("ASHA's best val accuracy %.4f is more than 5%% below the full search's %.4f", ba, bf)
	}
	if sa.FullSteps != 16*90 || 2*sa.StepsExecuted > sa.FullSteps {
		t.Errorf("ASHA executed %d steps of %d, want at most half", sa.StepsExecuted, sa.FullSteps)
	}
	if fullCounted > 0 && (ashaCounted != sa.StepsExecuted || fullCounted != sa.FullSteps) {
		t.Errorf("the trainer trained %d steps under ASHA and %d in full, the summary says %d and %d",
			ashaCounted, fullCounted, sa.StepsExecuted, sa.FullSteps)
	}
}

// TestASHABudget is acceptance 2's budget on a deterministic toy curve
// (lrCurve): ASHA's best val accuracy within 5% of the full 16-point
// search's, with at most half its steps.
func TestASHABudget(t *testing.T) {
	c := &curveTrainer{}
	checkBudget(t, c, c.steps.Load)
}

// TestASHABudgetBuiltin is the same with the builtin trainer on the named
// case (LoRA on teacher-shift): the builtin reports val accuracy at every
// eval_every point and honours trainer.StopAfter.
func TestASHABudgetBuiltin(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 16 LoRA trials twice")
	}
	cache, err := tasks.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	checkBudget(t, runner.Builtin{T: &train.Trainer{Cache: cache, NoWeights: true}}, nil)
}
