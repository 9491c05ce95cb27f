package runner

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// tuneCatalog is the smallest sweeps.Catalog a tune sweep needs: lora
// (rank, alpha) and full on one task "toy" with one 8×8 layer.
type tuneCatalog struct{}

func (tuneCatalog) Methods() []string            { return []string{"full", "lora"} }
func (tuneCatalog) Tasks() []string              { return []string{"toy"} }
func (tuneCatalog) Executors() []string          { return []string{"local", "slurm"} }
func (tuneCatalog) HasRank(m string) bool        { return m == "lora" }
func (tuneCatalog) FromRank(string, string) bool { return false }
func (tuneCatalog) TaskOptions(string) []string  { return nil }
func (tuneCatalog) MethodOptions(m string) []string {
	if m == "lora" {
		return []string{"alpha"}
	}
	return nil
}
func (tuneCatalog) ResolveMethod(m string, rank int, opts map[string]any) (map[string]any, error) {
	if m != "lora" {
		return map[string]any{}, nil
	}
	out := map[string]any{"alpha": float64(8)}
	if v, ok := opts["alpha"]; ok {
		switch v := v.(type) {
		case int64:
			out["alpha"] = float64(v)
		case float64:
			out["alpha"] = v
		default:
			return nil, fmt.Errorf("alpha: want a number, got %v", v)
		}
	}
	return out, nil
}
func (tuneCatalog) ResolveTask(string, map[string]any) (map[string]any, error) {
	return map[string]any{}, nil
}
func (tuneCatalog) Layers(string, map[string]any) ([]sweeps.Layer, error) {
	return []sweeps.Layer{{Name: "fc", Out: 8, In: 8}}, nil
}
func (tuneCatalog) CheckMethodLayers(string, int, map[string]any, []sweeps.Layer) error { return nil }

// tuneSweep: lora and full, lr tuned over three points on one tune seed,
// tested on three seeds.
const tuneSweep = `
name = "tune"
[protocol]
kind = "tune"
test_seeds = 3
[grid]
method = ["lora", "full"]
rank = [4]
task = ["toy"]
lr = [1e-3, 3e-3, 1e-2]
[defaults]
steps = 4
targets = ["fc"]
`

func tunePlan(t testing.TB, src string) *sweeps.Plan {
	t.Helper()
	p, err := sweeps.Parse("tune.toml", []byte(src), tuneCatalog{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// splitToy reports a validation metric that peaks at lr = 1e-2 and a test
// (target) metric that peaks at lr = 1e-3, so a selection that peeked at
// the test split would choose differently. Full fine-tuning diverges at
// every lr, so its group gets no test trials. stepDelay slows it for the
// crash tests.
func splitToy(stepDelay time.Duration) trainerFunc {
	return func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
		x := math.Log10(t.Train.LR)
		for step := 1; step <= t.Train.Steps; step++ {
			if !sleep(ctx, stepDelay) {
				return ctx.Err()
			}
			if t.Method == "full" && step == 2 {
				r.Step(step, "train", "loss", math.NaN())
				return ctx.Err()
			}
			r.Step(step, "train", "loss", toyLoss(t, step))
		}
		noise := float64(t.Seed) * 1e-3
		r.Summary("val_metric", 1-math.Abs(x+2)/4+noise)
		r.Summary("target_metric", 1-math.Abs(x+3)/4+noise)
		r.Summary("target_loss", math.Abs(x+3)+noise)
		return nil
	}
}

// TestTuneChoosesOnValidation runs a tune sweep: the choice follows the
// validation metric (lr = 1e-2) although the test metric favours 1e-3,
// the chosen point runs on the test seeds as new trials of phase "test",
// and the group whose every point diverged gets no test trials and says
// so in the log and in tune.json.
func TestTuneChoosesOnValidation(t *testing.T) {
	plan := tunePlan(t, tuneSweep)
	var log bytes.Buffer
	opts := testOptions(t, splitToy(0))
	opts.Log = &log
	sum, err := Run(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := results.ReadTune(sum.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Groups) != 2 {
		t.Fatalf("%d groups, want 2", len(rec.Groups))
	}
	lora, full := rec.Groups[0], rec.Groups[1]
	p := lora.ChosenPoint()
	if p == nil || p.Values["lr"] != 1e-2 {
		t.Fatalf("lora chose %+v (note %q), want lr = 0.01 (the validation optimum)", p, lora.Note)
	}
	if full.ChosenPoint() != nil || !strings.Contains(full.Note, "no test trials") {
		t.Errorf("full: chosen %d, note %q; want no choice", full.Chosen, full.Note)
	}
	if !strings.Contains(log.String(), "full toy: no test trials") || !strings.Contains(log.String(), "lora r4 toy: chose lr=0.01") {
		t.Errorf("log:\n%s", log.String())
	}
	shards := shards(t, sum.Dir)
	if len(lora.TestTrials) != 3 {
		t.Fatalf("lora: %d test trials, want 3", len(lora.TestTrials))
	}
	for i, id := range lora.TestTrials {
		s, ok := shards[id]
		if !ok || s.Trial.Status != results.StatusOK || s.Trial.Seed != int64(i+1) || !strings.Contains(s.Trial.Config, `"phase":"test"`) ||
			!strings.Contains(s.Trial.Config, `"lr":0.01`) || s.Trial.Index != int64(len(plan.Trials)+i) {
			t.Errorf("test trial %d %s: %+v", i, id, s)
		}
	}
	if want := len(plan.Trials) + 3; sum.Total != want || len(shards) != want || sum.Counts[results.StatusOK] != 6 || sum.Counts[results.StatusDiverged] != 3 {
		t.Errorf("summary %+v, %d shards; want %d trials, 6 ok, 3 diverged", sum, len(shards), want)
	}
	m, err := results.ReadManifest(sum.Dir)
	if err != nil || !bytes.Contains(m.Trials, []byte(lora.TestTrials[2])) {
		t.Errorf("the manifest does not list the test trials: %v", err)
	}

	// A rerun runs nothing and chooses the same.
	first, _ := os.ReadFile(filepath.Join(sum.Dir, results.TuneFile))
	var c counter
	opts.Trainer = c.wrap(splitToy(0))
	sum2, err := Run(context.Background(), plan, opts)
	if err != nil || c.total() != 0 || sum2.Skipped != sum.Total {
		t.Errorf("rerun: %v, %d trainer runs, %d skipped of %d", err, c.total(), sum2.Skipped, sum.Total)
	}
	if again, _ := os.ReadFile(filepath.Join(sum.Dir, results.TuneFile)); !bytes.Equal(again, first) || len(first) == 0 {
		t.Errorf("the rerun's selection differs:\n%s\n%s", again, first)
	}
}

// TestChooseTune is the selection rule on hand-made search results.
func TestChooseTune(t *testing.T) {
	plan := tunePlan(t, `
name = "c"
[protocol]
kind = "tune"
tune_seeds = 2
test_seeds = 2
[grid]
method = ["lora"]
rank = [4]
task = ["toy"]
lr = [1e-3, 3e-3, 1e-2]
[defaults]
targets = ["fc"]
`)
	pts := plan.Protocol.Groups[0].Points
	type res struct {
		status string
		val    float64
	}
	ok := func(v float64) res { return res{results.StatusOK, v} }
	cases := []struct {
		name   string
		higher bool
		runs   [3][2]res // per point, per tune seed; status "" = no shard
		chosen int
		note   string
	}{
		{"max of means", true, [3][2]res{{ok(0.5), ok(0.7)}, {ok(0.8), ok(0.2)}, {ok(0.6), ok(0.61)}}, 2, ""},
		{"min", false, [3][2]res{{ok(0.5), ok(0.7)}, {ok(0.8), ok(0.2)}, {ok(0.6), ok(0.61)}}, 1, ""},
		{"tie goes to the first", true, [3][2]res{{ok(0.5), ok(0.5)}, {ok(0.7), ok(0.3)}, {ok(0.4), ok(0.6)}}, 0, ""},
		{"a diverged seed disqualifies", true, [3][2]res{{ok(0.1), ok(0.1)}, {ok(0.9), {results.StatusDiverged, math.NaN()}}, {ok(0.2), ok(0.2)}}, 2, ""},
		{"a stopped seed disqualifies", true, [3][2]res{{ok(0.1), ok(0.1)}, {ok(0.9), {results.StatusStopped, 0.95}}, {ok(0.2), ok(0.2)}}, 2, ""},
		{"no metric disqualifies", true, [3][2]res{{ok(0.1), ok(0.1)}, {ok(0.9), ok(math.NaN())}, {ok(0.2), ok(0.2)}}, 2, ""},
		{"a failed trial makes the group wait", true, [3][2]res{{ok(0.1), ok(0.1)}, {ok(0.9), ok(0.9)}, {ok(0.2), {results.StatusFailed, math.NaN()}}}, -1, "waiting: 1 search trial"},
		{"a missing trial makes the group wait", true, [3][2]res{{ok(0.1), ok(0.1)}, {ok(0.9), ok(0.9)}, {ok(0.2), {}}}, -1, "waiting"},
		{"nothing competes", true, [3][2]res{{{results.StatusDiverged, 0}, ok(0.1)}, {ok(math.NaN()), ok(0.9)}, {ok(0.2), {results.StatusDiverged, 0}}}, -1, "no test trials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			shards := map[string]*results.Shard{}
			for i, pt := range pts {
				for j, id := range pt.Trials {
					r := tc.runs[i][j]
					if r.status == "" {
						continue
					}
					row := results.TrialRow{TrialID: id, Status: r.status}
					row.ClearMetrics()
					row.SetMetric("val_metric", r.val)
					row.SetMetric("target_metric", 1-r.val) // never read
					shards[id] = &results.Shard{Trial: row}
				}
			}
			rec, tests, err := chooseTune(plan, shards, tc.higher)
			if err != nil {
				t.Fatal(err)
			}
			g := rec.Groups[0]
			if g.Chosen != tc.chosen || !strings.Contains(g.Note, tc.note) {
				t.Fatalf("chosen %d note %q, want %d %q", g.Chosen, g.Note, tc.chosen, tc.note)
			}
			if tc.chosen < 0 {
				if len(tests) != 0 {
					t.Errorf("%d test trials for a group without a choice", len(tests))
				}
				return
			}
			want := plan.Trials[0]
			for _, tr := range plan.Trials {
				if tr.ID == pts[tc.chosen].Trials[0] {
					want = tr
				}
			}
			if len(tests) != 2 || tests[0].Train.LR != want.Train.LR || tests[0].Seed != 2 || tests[1].Seed != 3 ||
				tests[0].Phase != sweeps.PhaseTest || tests[0].Index != len(plan.Trials) {
				t.Errorf("test trials %+v, want lr %v on seeds 2, 3", tests, want.Train.LR)
			}
		})
	}
}

// TestTuneDirection: an unknown metric needs a direction, refused before
// any trial runs; known ones take theirs.
func TestTuneDirection(t *testing.T) {
	for _, tc := range []struct {
		metric, dir string
		higher      bool
		err         bool
	}{
		{"val_metric", "", true, false},
		{"val_loss", "", false, false},
		{"forgetting", "", false, false},
		{"my_score", "", false, true},
		{"my_score", "max", true, false},
		{"val_metric", "min", false, false},
	} {
		h, err := tuneDirection(&sweeps.Protocol{Metric: tc.metric, Direction: tc.dir})
		if h != tc.higher || (err != nil) != tc.err {
			t.Errorf("%s %q: %v %v", tc.metric, tc.dir, h, err)
		}
	}
	plan := tunePlan(t, strings.Replace(tuneSweep, `kind = "tune"`, "kind = \"tune\"\nmetric = \"my_score\"", 1))
	var c counter
	opts := testOptions(t, c.wrap(splitToy(0)))
	if _, err := Run(context.Background(), plan, opts); err == nil || !strings.Contains(err.Error(), `set direction = "max" or "min"`) || c.total() != 0 {
		t.Errorf("unknown direction: %v after %d trials", err, c.total())
	}
}

// TestTuneSlurmRefused: the slurm executor refuses a tune sweep clearly.
func TestTuneSlurmRefused(t *testing.T) {
	_, err := RunSlurm(context.Background(), tunePlan(t, tuneSweep), SlurmOptions{Options: testOptions(t, nil)})
	if err == nil || !strings.Contains(err.Error(), "run it with the local executor") {
		t.Errorf("RunSlurm: %v", err)
	}
}

// The tune crash test's child: it runs tuneSweep into $RUNNER_TUNE_OUT.
const (
	envTuneOut  = "RUNNER_TUNE_OUT"
	envTuneHold = "RUNNER_TUNE_HOLD" // a phase: its later trials wait to be killed
)

func tuneChild(out string) int {
	toy := splitToy(15 * time.Millisecond)
	hold := os.Getenv(envTuneHold)
	trainer := trainerFunc(func(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
		// In the phase to be killed, only its first trials end: the kill
		// always finds that phase begun and unfinished, however slow the
		// machine (a timed kill raced a 0.1 s test phase under -race).
		if t.Phase == hold && ((hold == sweeps.PhaseSearch && t.Index >= 2) || (hold == sweeps.PhaseTest && t.Seed >= 2)) {
			<-ctx.Done()
			return ctx.Err()
		}
		return toy(ctx, t, dir, r)
	})
	opts := Options{Out: out, Workers: 2, CPUs: 4, Now: fixedClock, Trainer: trainer}
	plan, err := sweeps.Parse("tune.toml", []byte(tuneSweep), tuneCatalog{})
	if err == nil {
		_, err = Run(context.Background(), plan, opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childEnv starts the test binary as a child with env added.
func childEnv(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out.Len() > 0 {
			t.Logf("child output:\n%s", out.String())
		}
	})
	return cmd
}

// TestTuneCrashResume SIGKILLs a tune sweep in its search phase and, in
// another run, in its test phase; each rerun ends with tables and a
// selection byte-identical to a clean run's.
func TestTuneCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	base := t.TempDir()
	start := func(out string) func() error {
		cmd := childEnv(t, envTuneOut+"="+out)
		return cmd.Wait
	}
	clean := filepath.Join(base, "clean")
	if err := start(clean)(); err != nil {
		t.Fatalf("clean run: %v", err)
	}
	for _, phase := range []string{sweeps.PhaseSearch, sweeps.PhaseTest} {
		t.Run(phase, func(t *testing.T) {
			out := filepath.Join(base, phase)
			dir := filepath.Join(out, "tune")
			cmd := childEnv(t, envTuneOut+"="+out, envTuneHold+"="+phase)
			deadline := time.Now().Add(60 * time.Second)
			for {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("no %s trial finished in 60s", phase)
				}
				time.Sleep(2 * time.Millisecond)
				s, err := results.ReadShards(dir)
				if err != nil {
					continue
				}
				n := 0
				for _, sh := range s {
					if strings.Contains(sh.Trial.Config, `"phase":"`+phase+`"`) {
						n++
					}
				}
				if n >= 1 {
					break
				}
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			if s, _ := results.ReadShards(dir); len(s) == 9 {
				t.Fatal("the child finished every trial before it was killed")
			}
			if err := start(out)(); err != nil {
				t.Fatalf("rerun: %v", err)
			}
			for _, name := range []string{"trials.parquet", "steps.parquet", results.TuneFile} {
				got, err1 := os.ReadFile(filepath.Join(dir, name))
				want, err2 := os.ReadFile(filepath.Join(clean, "tune", name))
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s after a kill in the %s phase and a rerun differs from a clean run's", name, phase)
				}
			}
		})
	}
}

// TestTuneForceWidened: after a grid gains a point that does not change
// the choice, a forced rerun runs the new search trial only: the test
// trials of the standing choice survive dropStale, though the plan of the
// search phase does not list them.
func TestTuneForceWidened(t *testing.T) {
	opts := testOptions(t, splitToy(0))
	if _, err := Run(context.Background(), tunePlan(t, tuneSweep), opts); err != nil {
		t.Fatal(err)
	}
	wider := tunePlan(t, strings.Replace(tuneSweep, "lr = [1e-3, 3e-3, 1e-2]", "lr = [1e-3, 3e-3, 1e-2, 1e-4]", 1))
	var c counter
	opts.Trainer = c.wrap(splitToy(0))
	opts.Force = true
	sum, err := Run(context.Background(), wider, opts)
	if err != nil {
		t.Fatal(err)
	}
	// lr = 1e-4 for lora and full: two search trials, no test trial.
	if c.total() != 2 {
		t.Errorf("the forced rerun ran %d trials, want the 2 new search trials", c.total())
	}
	if sum.Counts[results.StatusOK] != 7 {
		t.Errorf("counts %v, want 7 ok (4 lora search, 3 test)", sum.Counts)
	}
}

// TestTuneForceMoved: a widened grid that moves the choice runs the new
// point's test trials and removes the old choice's, so trials.parquet's
// test phase holds the current choice alone.
func TestTuneForceMoved(t *testing.T) {
	opts := testOptions(t, splitToy(0))
	narrow := strings.Replace(tuneSweep, "lr = [1e-3, 3e-3, 1e-2]", "lr = [1e-3, 3e-3]", 1)
	if _, err := Run(context.Background(), tunePlan(t, narrow), opts); err != nil {
		t.Fatal(err)
	}
	opts.Force = true
	sum, err := Run(context.Background(), tunePlan(t, tuneSweep), opts)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := results.ReadTune(sum.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if p := rec.Groups[0].ChosenPoint(); p == nil || p.Values["lr"] != 1e-2 {
		t.Fatalf("lora chose %+v, want lr = 0.01", p)
	}
	var tests []string
	for id, s := range shards(t, sum.Dir) {
		if strings.Contains(s.Trial.Config, `"phase":"test"`) {
			tests = append(tests, id)
			if !strings.Contains(s.Trial.Config, `"lr":0.01`) {
				t.Errorf("test trial %s of an unchosen point survived: %s", id, s.Trial.Config)
			}
		}
	}
	if len(tests) != 3 {
		t.Errorf("%d test trials, want the 3 of the current choice", len(tests))
	}
}
