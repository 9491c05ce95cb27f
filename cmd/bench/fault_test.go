package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/train"
)

// faultSweep is the fault-injection suite's sweep: four fast builtin
// trials (LoRA and full fine-tuning, two seeds) on teacher-shift with a
// short pretraining, spectra on, two workers. Uninterrupted it takes about
// 2 s with its base cached, 4 s without.
const faultSweep = `name = "fault"
seeds = 2
[grid]
method = ["lora", "full"]
rank = [2]
task = ["teacher-shift"]
[task.teacher-shift]
pretrain_steps = 200
[defaults]
steps = 60
batch = 32
lr = 3e-3
eval_every = 20
[resources]
workers = 2
[analysis]
spectra = true
epsilons = [0.5]
`

// TestFaultInjection builds bench and runs faultSweep uninterrupted for the
// reference tables, then, at points drawn from a seeded RNG over the
// uninterrupted run's duration (pretraining, trials, analysis,
// compaction):
//
//   - kills it with SIGKILL and resumes it, checking that no trial that had
//     finished is run again or lost, each trial folder holds one shard,
//     and the final tables equal the reference;
//   - sends it SIGINT or SIGTERM, checking the exit status (130, 143), that
//     interrupted trials are recorded cancelled and none failed, and that
//     the resumed run's tables equal the reference.
//
// steps.parquet and spectra.parquet must be byte-identical to the
// reference; trials.parquet is compared row by row without the columns
// that measure the run rather than the trial (wall_seconds,
// peak_mem_bytes, started_at, ended_at), which differ between any two runs.
//
// A short version (4 kills, 2 + 2 signals) runs by default;
// PEFTBENCH_FAULTS=full runs the whole suite (24 kills, 6 + 6 signals), as
// .ci/run does. Skipped under -short.
func TestFaultInjection(t *testing.T) {
	bench := benchBinary(t)
	kills, signals := 4, 2
	if os.Getenv("PEFTBENCH_FAULTS") == "full" {
		kills, signals = 24, 6
	}
	dir := t.TempDir()
	sweep := filepath.Join(dir, "fault.toml")
	if err := os.WriteFile(sweep, []byte(faultSweep), 0o644); err != nil {
		t.Fatal(err)
	}
	warm := filepath.Join(dir, "cache") // the base, pretrained once
	started := time.Now()

	runTo := func(t *testing.T, out, cache string) (time.Duration, string) {
		t.Helper()
		var stderr bytes.Buffer
		cmd := exec.Command(bench, "run", sweep, "--out", out, "--cache", cache)
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("bench run %s: %v\n%s", out, err, stderr.String())
		}
		return time.Since(start), stderr.String()
	}
	refOut := filepath.Join(dir, "ref")
	cold, _ := runTo(t, refOut, warm)
	hot, _ := runTo(t, filepath.Join(dir, "ref2"), warm)
	ref := readTables(t, filepath.Join(refOut, "fault"))
	if again := readTables(t, filepath.Join(dir, "ref2", "fault")); !ref.equal(t, again) {
		t.Fatal("two uninterrupted runs differ: the sweep is not deterministic")
	}
	t.Logf("uninterrupted: %v with pretraining, %v with the base cached", cold.Round(time.Millisecond), hot.Round(time.Millisecond))

	rng := rand.New(rand.NewPCG(23, 2026))
	// delay draws a point in a run lasting d: uniform over it, and every
	// third draw in its last fifth (the last trials' analysis, compaction).
	// A run that ends before its point is not counted; another is drawn.
	draws := 0
	delay := func(d time.Duration) time.Duration {
		draws++
		u := rng.Float64()
		if draws%3 == 0 {
			u = 0.8 + 0.2*rng.Float64()
		}
		return time.Duration(u * float64(d))
	}

	t.Run("kill", func(t *testing.T) {
		phases := map[string]int{}
		ended := 0
		for i, n := 0, 0; n < kills; i++ {
			if i > 3*kills {
				t.Fatalf("only %d of %d runs were still running when killed", n, i)
			}
			// Every fourth kill starts without the base and comes in the
			// first half of the run, to land some in pretraining; the
			// others share the pretrained base.
			cache, wait := warm, delay(hot)
			if i%4 == 0 {
				cache, wait = filepath.Join(dir, fmt.Sprint("cold", i)), delay(cold/2)
			}
			out := filepath.Join(dir, fmt.Sprint("kill", i))
			cmd := exec.Command(bench, "run", sweep, "--out", out, "--cache", cache)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-exited:
				ended++ // ended before the kill: try another point
				continue
			case <-time.After(wait):
				cmd.Process.Kill()
				<-exited
			}
			n++
			sweepDir := filepath.Join(out, "fault")
			before := finishedShards(t, sweepDir)
			phase := killPhase(sweepDir, before, cache)
			phases[phase]++

			_, log := runTo(t, out, cache)
			after := readTables(t, sweepDir)
			if !ref.equal(t, after) {
				t.Errorf("kill %d (%s, after %v): resumed tables differ from the reference\n%s", i, phase, wait, log)
			}
			checkShards(t, sweepDir, before, ref)
		}
		t.Logf("%d kills, each resumed; where they came: %v; %d more runs ended before their kill", kills, phases, ended)
	})

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(signalName(sig), func(t *testing.T) {
			want := 128 + int(sig)
			statuses := map[string]int{}
			tried, finishedFirst := 0, 0
			for n := 0; n < signals; tried++ {
				if tried > 3*signals {
					t.Fatalf("only %d of %d runs were still running when signalled", n, tried)
				}
				out := filepath.Join(dir, fmt.Sprintf("%s%d", signalName(sig), tried))
				wait := time.Duration((0.05 + 0.75*rng.Float64()) * float64(hot))
				cmd := exec.Command(bench, "run", sweep, "--out", out, "--cache", warm)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				var err error
				select {
				case err = <-exited:
					finishedFirst++
					continue
				case <-time.After(wait):
				}
				cmd.Process.Signal(sig)
				select {
				case err = <-exited:
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					<-exited
					t.Fatalf("bench run did not exit within 30s of %s\n%s", signalName(sig), stderr.String())
				}
				if got := status(err); got != want && got != 0 {
					t.Errorf("bench run after %s at %v: exit status %d, want %d\n%s", signalName(sig), wait, got, want, stderr.String())
				} else if got == 0 {
					finishedFirst++ // the signal came as it ended
					continue
				}
				n++
				sweepDir := filepath.Join(out, "fault")
				shards, err := results.ReadShards(sweepDir)
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("after %s: %v", signalName(sig), err)
				}
				for id, s := range shards {
					statuses[s.Trial.Status]++
					if s.Trial.Status != results.StatusOK && s.Trial.Status != results.StatusCancelled {
						t.Errorf("after %s: trial %s recorded %s %q, want ok or cancelled", signalName(sig), id, s.Trial.Status, s.Trial.Error)
					}
				}
				before := finishedShards(t, sweepDir)
				runTo(t, out, warm)
				if !ref.equal(t, readTables(t, sweepDir)) {
					t.Errorf("after %s at %v: resumed tables differ from the reference", signalName(sig), wait)
				}
				checkShards(t, sweepDir, before, ref)
			}
			t.Logf("%s: %d runs signalled (exit %d), %d ended before the signal; recorded statuses %v", signalName(sig), signals, want, finishedFirst, statuses)
		})
	}
	t.Logf("fault injection: %v in all", time.Since(started).Round(time.Second))
}

// killPhase says where a run was when it was killed, from what it left in
// its results folder and its base-model cache.
func killPhase(sweepDir string, finished map[string][32]byte, cache string) string {
	switch {
	case len(finished) == 4:
		if _, err := os.Stat(filepath.Join(sweepDir, results.TrialsFile)); err == nil {
			return "compaction or after"
		}
		return "analysis or compaction"
	case len(finished) > 0:
		return "between trials"
	}
	// The first trials wait for the base they share: without it in the
	// cache, the run was pretraining (or starting).
	if m, _ := filepath.Glob(filepath.Join(cache, "*.safetensors")); len(m) == 0 {
		return "start or pretraining"
	}
	if m, _ := filepath.Glob(filepath.Join(sweepDir, results.TrialsDir, "*", "trial.log")); len(m) > 0 {
		return "first trials"
	}
	return "start"
}

// finishedShards hashes the shard files of every trial of sweepDir whose
// shard is written and finished (ok or diverged).
func finishedShards(t *testing.T, sweepDir string) map[string][32]byte {
	t.Helper()
	shards, err := results.ReadShards(sweepDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		t.Fatalf("reading the shards a killed run left: %v", err)
	}
	out := map[string][32]byte{}
	for id, s := range shards {
		if s.Trial.Status == results.StatusOK || s.Trial.Status == results.StatusDiverged {
			out[id] = hashShard(t, filepath.Join(sweepDir, results.TrialsDir, id))
		}
	}
	return out
}

func hashShard(t *testing.T, dir string) [32]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// checkShards checks a resumed sweep: a trial folder per trial of the
// reference and no other, one shard in each (its three Parquet files, no
// more) and no live log, the shards finished before the resume untouched, and each trial's
// log saying it ended ok once, last.
func checkShards(t *testing.T, sweepDir string, before map[string][32]byte, ref *tables) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(sweepDir, results.TrialsDir))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, r := range ref.trials {
		want[r.TrialID] = true
	}
	for _, e := range entries {
		id := e.Name()
		if !want[id] {
			t.Errorf("trial folder %s is no trial of the sweep", id)
			continue
		}
		delete(want, id)
		dir := filepath.Join(sweepDir, results.TrialsDir, id)
		files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
		var names []string
		for _, f := range files {
			names = append(names, filepath.Base(f))
		}
		sort.Strings(names)
		if !reflect.DeepEqual(names, []string{results.SpectraFile, results.StepsFile, "trial.parquet"}) {
			t.Errorf("trial %s holds %v, want one shard", id, names)
		}
		if _, err := os.Stat(filepath.Join(dir, results.LiveFile)); err == nil {
			t.Errorf("trial %s: a live log beside its shard after the resume", id)
		}
		if h, ok := before[id]; ok && h != hashShard(t, dir) {
			t.Errorf("trial %s had finished before the resume, and the resume rewrote its shard", id)
		}
		log, err := os.ReadFile(filepath.Join(dir, "trial.log"))
		if err != nil {
			t.Errorf("trial %s: %v", id, err)
			continue
		}
		var runner []string
		for _, line := range strings.Split(string(log), "\n") {
			if strings.HasPrefix(line, "runner: ") {
				runner = append(runner, line)
			}
		}
		if n := strings.Count(string(log), "ended ok"); n != 1 || len(runner) == 0 || !strings.Contains(runner[len(runner)-1], "ended ok") {
			t.Errorf("trial %s: log does not end with its one ok ending:\n%s", id, log)
		}
	}
	for id := range want {
		t.Errorf("trial %s lost: no folder", id)
	}
}

// tables are a sweep's compacted tables.
type tables struct {
	trials         []results.TrialRow
	steps, spectra []byte
}

func readTables(t *testing.T, sweepDir string) *tables {
	t.Helper()
	trials, err := results.ReadTrials(filepath.Join(sweepDir, results.TrialsFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := range trials {
		// What measures the run rather than the trial.
		r := &trials[i]
		r.WallSeconds, r.PeakMemBytes = 0, 0
		r.StartedAt, r.EndedAt = time.Time{}, time.Time{}
		for _, k := range train.EfficiencySummaries {
			if train.IsTiming(k) { // the builtin trainer's wall-time summaries
				r.SetMetric(k, math.NaN())
				delete(r.Extra, k)
			}
		}
	}
	tb := &tables{trials: trials}
	if tb.steps, err = os.ReadFile(filepath.Join(sweepDir, results.StepsFile)); err != nil {
		t.Fatal(err)
	}
	if tb.spectra, err = os.ReadFile(filepath.Join(sweepDir, results.SpectraFile)); err != nil {
		t.Fatal(err)
	}
	return tb
}

// equal reports whether b has a's tables, logging the first difference.
func (a *tables) equal(t *testing.T, b *tables) bool {
	t.Helper()
	if !bytes.Equal(a.steps, b.steps) {
		t.Logf("steps.parquet differs (%d and %d bytes)", len(a.steps), len(b.steps))
		return false
	}
	if !bytes.Equal(a.spectra, b.spectra) {
		t.Logf("spectra.parquet differs (%d and %d bytes)", len(a.spectra), len(b.spectra))
		return false
	}
	if len(a.trials) != len(b.trials) {
		t.Logf("trials.parquet: %d and %d rows", len(a.trials), len(b.trials))
		return false
	}
	for i := range a.trials {
		if x, y := fmt.Sprintf("%+v", a.trials[i]), fmt.Sprintf("%+v", b.trials[i]); x != y {
			t.Logf("trials.parquet row %d differs:\n%s\n%s", i, x, y)
			return false
		}
	}
	return true
}
