package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// waitLive polls a trial's live log until it holds n step rows, failing
// the test after d. It checks that the trial has no shard yet.
func waitLive(t *testing.T, sweepDir, id string, n int, d time.Duration) *results.Live {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		lv, err := results.ReadLive(sweepDir, id)
		if err == nil && len(lv.Steps) >= n {
			if _, err := os.Stat(filepath.Join(results.ShardDir(sweepDir, id), "trial.parquet")); err == nil {
				t.Errorf("trial %s has a shard while its trainer still runs", id)
			}
			return lv
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("reading the live log: %v", err)
		}
		if time.Now().After(deadline) {
			got := -1
			if lv != nil {
				got = len(lv.Steps)
			}
			t.Fatalf("after %v the live log of %s holds %d step rows (-1: none), want %d while the trainer runs", d, id, got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sameSteps reports how two step lists differ, "" when they hold the same
// rows in the same order (NaN equal to NaN).
func sameSteps(got, want []results.StepRow) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.TrialID != w.TrialID || g.Step != w.Step || g.Split != w.Split || g.Metric != w.Metric ||
			!(g.Value == w.Value || math.IsNaN(g.Value) && math.IsNaN(w.Value)) {
			return fmt.Sprintf("row %d is %+v, want %+v", i, g, w)
		}
	}
	return ""
}

// TestLiveLogCommand: an external trainer's step messages reach the live
// log while it runs, not when it exits. The fake trainer prints three
// metrics, then waits for a file the test writes once it has read them
// back; after the trial the log is gone and the shard holds those steps.
// Catches: the command trainer buffering messages to its exit, the runner
// writing the log only when the attempt ends, or not removing it after
// the shard.
func TestLiveLogCommand(t *testing.T) {
	script := filepath.Join(t.TempDir(), "trainer.sh")
	writeScript(t, script, `
echo '{"type":"metric","step":1,"split":"train","name":"loss","value":0.5}'
echo '{"type":"metric","step":2,"split":"train","name":"loss","value":0.25}'
echo '{"type":"metric","step":2,"split":"target","name":"accuracy","value":"NaN"}'
i=0
while [ ! -e "$PEFTBENCH_OUT/go" ]; do
	i=$((i+1)); [ $i -gt 600 ] && exit 4
	sleep 0.05
done
echo '{"type":"metric","step":3,"split":"train","name":"loss","value":0.125}'
echo '{"type":"summary","metrics":{"target_loss":0.125}}'
`)
	plan := testPlan("livecmd", 1)
	plan.Trainer = sweeps.TrainerSpec{Kind: "command", Command: []string{script}}
	opts := testOptions(t, nil)
	id := plan.Trials[0].ID
	sweepDir := filepath.Join(opts.Out, plan.Name)
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), plan, opts)
		done <- err
	}()
	lv := waitLive(t, sweepDir, id, 3, 20*time.Second)
	if err := os.WriteFile(filepath.Join(results.ShardDir(sweepDir, id), "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if lv.Header.Trial != id || lv.Header.Attempt != 1 {
		t.Errorf("live header %+v, want trial %s attempt 1", lv.Header, id)
	}
	s := shards(t, sweepDir)[id]
	if s.Trial.Status != results.StatusOK {
		t.Fatalf("status %s %s", s.Trial.Status, s.Trial.Error)
	}
	if d := sameSteps(lv.Steps, s.Steps[:3]); d != "" {
		t.Errorf("live log mid-trial vs the shard's first rows: %s", d)
	}
	if len(s.Steps) != 4 {
		t.Errorf("shard: %d steps, want 4", len(s.Steps))
	}
	if _, err := results.ReadLive(sweepDir, id); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("live log after the shard was written: %v, want it removed", err)
	}
}

// TestLiveLogRetry: each attempt replaces the log. Attempt 1 reports
// steps with values 100+step and fails; attempt 2, mid-way, finds only its
// own header and rows in the log; at the end of attempt 2 (the AfterTrial
// hook runs before the shard is written) the log holds exactly the
// shard's steps. Catches: one log per trial appended across attempts (the
// failed attempt's rows mix in), a header with the wrong attempt, rows the
// log has and the shard not (or the reverse).
func TestLiveLogRetry(t *testing.T) {
	plan := testPlan("liveretry", 1)
	plan.Resources.Retries = 1
	id := plan.Trials[0].ID
	var midway *results.Live
	var sweepDir string
	opts := testOptions(t, trainerFunc(func(ctx context.Context, tr sweeps.Trial, dir string, r Reporter) error {
		lv, err := results.ReadLive(sweepDir, id)
		if err != nil {
			return fmt.Errorf("no live log when the attempt starts: %w", err)
		}
		if lv.Header.Attempt == 1 {
			for step := 1; step <= 4; step++ {
				r.Step(step, "train", "loss", 100+float64(step))
			}
			return errors.New("first attempt fails")
		}
		r.Step(1, "train", "loss", 0.5)
		r.Step(1, "train", "lr", 1e-3)
		midway, err = results.ReadLive(sweepDir, id)
		if err != nil {
			return err
		}
		r.Step(2, "train", "loss", 0.25)
		toySummary(tr, r)
		return nil
	}))
	sweepDir = filepath.Join(opts.Out, plan.Name)
	var atEnd *results.Live
	var shardSteps []results.StepRow
	opts.AfterTrial = func(ctx context.Context, tr sweeps.Trial, dir string, _ map[string]string, s *results.Shard) error {
		var err error
		atEnd, err = results.ReadLive(sweepDir, tr.ID)
		shardSteps = slices.Clone(s.Steps)
		return err
	}
	if _, err := Run(context.Background(), plan, opts); err != nil {
		t.Fatal(err)
	}
	s := shards(t, sweepDir)[id]
	if s.Trial.Status != results.StatusOK || s.Trial.Attempts != 2 {
		t.Fatalf("status %s after %d attempts (%s), want ok after 2", s.Trial.Status, s.Trial.Attempts, s.Trial.Error)
	}
	if midway == nil || midway.Header.Attempt != 2 {
		t.Fatalf("attempt 2 mid-way: live log %+v, want attempt 2's", midway)
	}
	want := []results.StepRow{
		{TrialID: id, Step: 1, Split: "train", Metric: "loss", Value: 0.5},
		{TrialID: id, Step: 1, Split: "train", Metric: "lr", Value: 1e-3},
	}
	if d := sameSteps(midway.Steps, want); d != "" {
		t.Errorf("attempt 2 mid-way: %s", d)
	}
	if atEnd == nil {
		t.Fatal("the AfterTrial hook did not run")
	}
	if d := sameSteps(atEnd.Steps, shardSteps); d != "" {
		t.Errorf("live log at the end of the attempt vs the shard: %s", d)
	}
	if d := sameSteps(s.Steps, shardSteps); d != "" {
		t.Errorf("shard written vs the shard the hook saw: %s", d)
	}
	if _, err := results.ReadLive(sweepDir, id); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("live log after the shard was written: %v, want it removed", err)
	}
}

// TestLiveLogReporterRows: the rows the reporter writes to the live log
// are exactly the rows it keeps for the shard, whatever the trainer
// reports after a divergence or after the attempt ended. Catches: writing
// the log before the sealed and diverged checks (rows the shard drops
// would be in the log), or after the lock (rows out of the shard's order).
func TestLiveLogReporterRows(t *testing.T) {
	type rep struct {
		step          int
		split, metric string
		value         float64
	}
	tests := []struct {
		name      string
		before    []rep // reported while the attempt runs
		afterSeal []rep // reported by a trainer that outlived its attempt
	}{
		{"plain", []rep{{1, "train", "loss", 2}, {1, "train", "lr", 1e-3}, {2, "target", "accuracy", 0.5}}, nil},
		{"NaN loss", []rep{{1, "train", "loss", 2}, {2, "train", "loss", math.NaN()}, {3, "train", "loss", 1}}, nil},
		{"exploded", []rep{{1, "train", "loss", 2}, {2, "train", "loss", 1e9}, {3, "target", "loss", 1}}, nil},
		{"non-finite other metric", []rep{{1, "train", "grad_norm", math.Inf(1)}, {1, "train", "loss", 1}}, nil},
		{"after seal", []rep{{1, "train", "loss", 2}}, []rep{{2, "train", "loss", 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var logged bytes.Buffer
			log := &lineLog{w: &logged}
			l, err := results.CreateLive(dir, "t1", 1, fixedClock())
			if err != nil {
				t.Fatal(err)
			}
			p := newReporter(results.TrialRow{TrialID: "t1"}, log)
			p.live = &liveSink{l: l, log: log}
			for _, s := range tc.before {
				p.Step(s.step, s.split, s.metric, s.value)
			}
			p.seal()
			p.live.close()
			for _, s := range tc.afterSeal {
				p.Step(s.step, s.split, s.metric, s.value)
			}
			lv, err := results.ReadLive(dir, "t1")
			if err != nil {
				t.Fatal(err)
			}
			if d := sameSteps(lv.Steps, p.shard().Steps); d != "" {
				t.Errorf("live log vs shard: %s", d)
			}
			if strings.Contains(logged.String(), "live step log") {
				t.Errorf("trial.log reports a live log error:\n%s", logged.String())
			}
		})
	}
}

// TestLiveLogWriteErrors: a live log that cannot be written never fails
// the trial, and says so once in trial.log. Catches: a write error
// returned into the trial's status, or logged once per step.
func TestLiveLogWriteErrors(t *testing.T) {
	t.Run("append", func(t *testing.T) {
		var logged bytes.Buffer
		log := &lineLog{w: &logged}
		l, err := results.CreateLive(t.TempDir(), "t1", 1, fixedClock())
		if err != nil {
			t.Fatal(err)
		}
		l.Close() // every Append now fails
		p := newReporter(results.TrialRow{TrialID: "t1"}, log)
		p.live = &liveSink{l: l, log: log}
		for step := 1; step <= 5; step++ {
			p.Step(step, "train", "loss", 1/float64(step))
		}
		if n := strings.Count(logged.String(), "live step log"); n != 1 {
			t.Errorf("%d live log errors in trial.log, want 1:\n%s", n, logged.String())
		}
		if got := len(p.shard().Steps); got != 5 {
			t.Errorf("the shard kept %d steps, want 5", got)
		}
	})
	t.Run("create", func(t *testing.T) {
		plan := testPlan("livecreate", 1)
		id := plan.Trials[0].ID
		opts := testOptions(t, trainerFunc(toy))
		sweepDir := filepath.Join(opts.Out, plan.Name)
		// A folder where the log goes: neither the log nor its removal
		// can succeed.
		if err := os.MkdirAll(filepath.Join(results.ShardDir(sweepDir, id), results.LiveFile, "x"), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Run(context.Background(), plan, opts); err != nil {
			t.Fatal(err)
		}
		s := shards(t, sweepDir)[id]
		if s.Trial.Status != results.StatusOK || len(s.Steps) != plan.Trials[0].Train.Steps {
			t.Errorf("status %s (%s) with %d steps, want ok with %d", s.Trial.Status, s.Trial.Error, len(s.Steps), plan.Trials[0].Train.Steps)
		}
		assertFile(t, filepath.Join(results.ShardDir(sweepDir, id), "trial.log"), "no live step log for this attempt")
	})
}

// TestLiveLogSlurmTask: a Slurm task (RunTrial) writes the live log of its
// attempt, numbered as the driver numbers it, and removes it with its
// shard. Catches: RunTrial running trials through a path without the live
// log, or the header counting attempts from 1 in every task.
func TestLiveLogSlurmTask(t *testing.T) {
	plan := testPlan("liveslurm", 2)
	opts := testOptions(t, trainerFunc(toy))
	sum, err := Run(context.Background(), plan, opts) // the manifest a submitted sweep has
	if err != nil {
		t.Fatal(err)
	}
	id := plan.Trials[1].ID
	var mid *results.Live
	peek := trainerFunc(func(ctx context.Context, tr sweeps.Trial, dir string, r Reporter) error {
		r.Step(1, "train", "loss", 0.75)
		var err error
		if mid, err = results.ReadLive(sum.Dir, tr.ID); err != nil {
			return err
		}
		return toy(ctx, tr, dir, r)
	})
	status, err := RunTrial(context.Background(), plan, sum.Dir, 1, 3, Options{Trainer: peek, Now: fixedClock})
	if err != nil || status != results.StatusOK {
		t.Fatalf("RunTrial: %s, %v", status, err)
	}
	if mid == nil || mid.Header.Attempt != 3 || len(mid.Steps) != 1 || mid.Steps[0].Value != 0.75 {
		t.Errorf("the task's live log mid-trial: %+v, want attempt 3 with its one step", mid)
	}
	if _, err := results.ReadLive(sum.Dir, id); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("live log after the task wrote its shard: %v, want it removed", err)
	}
}

// TestLiveLogResume: a sweep killed mid-trial (kill -9 leaves the trial a
// live log of its attempt, a torn last line, and no shard) is rerun. The
// rerun's log holds only its own attempt's rows; the final tables hold
// each (trial, step, split, metric) once, from the rerun, and the killed
// attempt's rows nowhere; compaction and TablesStale pay the live log no
// heed. A stale log beside a finished shard (a kill between the shard's
// write and the log's removal) is removed by the rerun. Catches: the
// rerun appending to the killed attempt's log, compaction reading live
// logs into steps.parquet, TablesStale counting a live log as a shard.
func TestLiveLogResume(t *testing.T) {
	plan := testPlan("liveresume", 3)
	opts := testOptions(t, trainerFunc(toy))
	sum, err := Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	killed, done := plan.Trials[1], plan.Trials[2]
	// What kill -9 leaves: the trial's shard not yet written, its log.
	for _, f := range []string{"trial.parquet", results.StepsFile, results.SpectraFile, "checksums.json"} {
		os.Remove(filepath.Join(results.ShardDir(sum.Dir, killed.ID), f))
	}
	plantLive(t, sum.Dir, killed.ID, 1, 3)
	plantLive(t, sum.Dir, done.ID, 1, 5) // beside a finished shard
	if stale, err := results.TablesStale(sum.Dir); err != nil || stale == "" {
		t.Errorf("TablesStale with a shard gone: %q, %v; want it to see the missing shard", stale, err)
	}
	if err := results.Compact(sum.Dir); err != nil {
		t.Fatalf("Compact with live logs in the folder: %v", err)
	}
	if stale, err := results.TablesStale(sum.Dir); err != nil || stale != "" {
		t.Errorf("TablesStale after compaction, live logs in the folder: %q, %v; want none", stale, err)
	}
	shardsNow, damaged, err := results.ScanShards(sum.Dir)
	if err != nil || len(damaged) > 0 || len(shardsNow) != 2 {
		t.Errorf("ScanShards with live logs: %d shards, damaged %v, %v; want 2 and none damaged", len(shardsNow), damaged, err)
	}
	steps, err := results.ReadSteps(filepath.Join(sum.Dir, results.StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Value >= 100 {
			t.Fatalf("compaction read a live log: %+v in steps.parquet", s)
		}
	}

	var mid *results.Live
	opts.Trainer = trainerFunc(func(ctx context.Context, tr sweeps.Trial, dir string, r Reporter) error {
		if tr.ID != killed.ID {
			return toy(ctx, tr, dir, r)
		}
		for step := 1; step <= tr.Train.Steps; step++ {
			r.Step(step, "train", "loss", toyLoss(tr, step))
			if step == 2 {
				var err error
				if mid, err = results.ReadLive(sum.Dir, tr.ID); err != nil {
					return err
				}
			}
		}
		toySummary(tr, r)
		return nil
	})
	if _, err := Run(context.Background(), plan, opts); err != nil {
		t.Fatal(err)
	}
	if mid == nil {
		t.Fatal("the killed trial did not run again")
	}
	if d := sameSteps(mid.Steps, []results.StepRow{
		{TrialID: killed.ID, Step: 1, Split: "train", Metric: "loss", Value: toyLoss(killed, 1)},
		{TrialID: killed.ID, Step: 2, Split: "train", Metric: "loss", Value: toyLoss(killed, 2)},
	}); d != "" {
		t.Errorf("the rerun's live log mid-trial: %s", d)
	}
	for _, tr := range plan.Trials {
		if _, err := results.ReadLive(sum.Dir, tr.ID); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("trial %s: a live log after the rerun: %v", tr.ID, err)
		}
	}
	steps, err = results.ReadSteps(filepath.Join(sum.Dir, results.StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		id, split, metric string
		step              int64
	}
	seen := map[key]int{}
	perTrial := map[string]int{}
	for _, s := range steps {
		k := key{s.TrialID, s.Split, s.Metric, s.Step}
		if seen[k]++; seen[k] == 2 {
			t.Errorf("steps.parquet holds %+v twice", k)
		}
		if s.Value >= 100 {
			t.Errorf("steps.parquet holds a row of the killed attempt: %+v", s)
		}
		perTrial[s.TrialID]++
	}
	if perTrial[killed.ID] != killed.Train.Steps || perTrial[done.ID] != done.Train.Steps {
		t.Errorf("steps.parquet rows per trial %v", perTrial)
	}
}

// plantLive writes the live log a killed attempt leaves: a header, rows
// with values 100+step for steps 1..n, and a torn last line.
func plantLive(t *testing.T, sweepDir, id string, attempt, n int) {
	t.Helper()
	l, err := results.CreateLive(sweepDir, id, attempt, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	for step := 1; step <= n; step++ {
		if err := l.Append(int64(step), "train", "loss", 100+float64(step)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	f, err := os.OpenFile(filepath.Join(results.ShardDir(sweepDir, id), results.LiveFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"step":`)
	f.Close()
}

// BenchmarkReporterStep is the cost of one Reporter.Step with and without
// the live log (one written-through line per step).
func BenchmarkReporterStep(b *testing.B) {
	for _, live := range []bool{false, true} {
		b.Run(fmt.Sprintf("live=%v", live), func(b *testing.B) {
			log := &lineLog{w: &bytes.Buffer{}}
			p := newReporter(results.TrialRow{TrialID: "t1"}, log)
			if live {
				l, err := results.CreateLive(b.TempDir(), "t1", 1, fixedClock())
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				p.live = &liveSink{l: l, log: log}
			}
			for i := 0; b.Loop(); i++ {
				p.Step(i, "train", "grad_norm", 0.123456789)
				if len(p.steps) > 1<<16 {
					p.steps = p.steps[:0]
				}
			}
		})
	}
}
