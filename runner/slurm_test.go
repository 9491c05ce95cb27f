package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

func TestClassifyState(t *testing.T) {
	for _, tc := range []struct {
		state string
		want  StateClass
	}{
		{StatePending, Active},
		{StateConfiguring, Active},
		{StateRunning, Active},
		{StateCompleting, Active},
		{"SUSPENDED", Active},
		{"REQUEUED", Active},
		{"REQUEUE_HOLD", Active},
		{"RESIZING", Active},
		{"SIGNALING", Active},
		{"STAGE_OUT", Active},
		{"STOPPED", Active},
		{"SOME_FUTURE_STATE", Active}, // never resubmit what may still run
		{StateCompleted, Ended},
		{StateFailed, Ended},
		{StateCancelled, Ended},
		{StateNodeFail, Ended},
		{StatePreempted, Ended},
		{StateOutOfMemory, Ended},
		{StateBootFail, Ended},
		{StateUnknown, Ended},
		{StateLost, Ended},
		{"REVOKED", Ended},
		{StateTimeout, EndedTimeout},
		{StateDeadline, EndedTimeout},
	} {
		if got := ClassifyState(tc.state); got != tc.want {
			t.Errorf("ClassifyState(%s) = %d, want %d", tc.state, got, tc.want)
		}
	}
}

func TestParseSqueue(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      map[taskKey]TaskState
		err       string
	}{
		{name: "empty", out: "", want: map[taskKey]TaskState{}},
		{
			name: "every state",
			out: `7 7 0 COMPLETED None
8 7 1 FAILED NonZeroExitCode
9 7 2 CANCELLED None
10 7 3 TIMEOUT TimeLimit
11 7 4 NODE_FAIL None
12 7 5 PREEMPTED None
13 7 6 OUT_OF_MEMORY OutOfMemory
14 7 7 UNKNOWN None
15 7 8 RUNNING None
16 7 9 COMPLETING None
7 7 10 PENDING JobArrayTaskLimit
`,
			want: map[taskKey]TaskState{
				{"7", 0}:  {"7", "7", 0, StateCompleted, "None"},
				{"7", 1}:  {"8", "7", 1, StateFailed, "NonZeroExitCode"},
				{"7", 2}:  {"9", "7", 2, StateCancelled, "None"},
				{"7", 3}:  {"10", "7", 3, StateTimeout, "TimeLimit"},
				{"7", 4}:  {"11", "7", 4, StateNodeFail, "None"},
				{"7", 5}:  {"12", "7", 5, StatePreempted, "None"},
				{"7", 6}:  {"13", "7", 6, StateOutOfMemory, "OutOfMemory"},
				{"7", 7}:  {"14", "7", 7, StateUnknown, "None"},
				{"7", 8}:  {"15", "7", 8, StateRunning, "None"},
				{"7", 9}:  {"16", "7", 9, StateCompleting, "None"},
				{"7", 10}: {"7", "7", 10, StatePending, "JobArrayTaskLimit"},
			},
		},
		{
			name: "unexpanded pending tasks, reason with spaces, cancelled+",
			out:  "20 20 [4-6,9%2] PENDING launch failed requeued held\n21 20 1 CANCELLED+ None\n",
			want: map[taskKey]TaskState{
				{"20", 4}: {"20", "20", 4, StatePending, "launch failed requeued held"},
				{"20", 5}: {"20", "20", 5, StatePending, "launch failed requeued held"},
				{"20", 6}: {"20", "20", 6, StatePending, "launch failed requeued held"},
				{"20", 9}: {"20", "20", 9, StatePending, "launch failed requeued held"},
				{"20", 1}: {"21", "20", 1, StateCancelled, "None"},
			},
		},
		{name: "not an array task", out: "30 30 N/A RUNNING None\n", want: map[taskKey]TaskState{}},
		{name: "short line", out: "30 30 RUNNING\n", err: "line 1"},
		{name: "bad task", out: "30 30 x RUNNING None\n", err: `bad array task ID "x"`},
		{name: "bad range", out: "30 30 [5-2] PENDING None\n", err: "bad array task range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSqueue(tc.out)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestArraySpec(t *testing.T) {
	seq := func(n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = i
		}
		return s
	}
	for _, tc := range []struct {
		ids      []int
		throttle int
		want     string
	}{
		{seq(12), 2, "0-11%2"},
		{seq(12), 0, "0-11"},
		{[]int{3, 7}, 2, "3,7%2"},
		{[]int{9, 3, 4, 5, 4, 11}, 0, "3-5,9,11"},
		{[]int{0}, 1, "0%1"},
	} {
		if got := ArraySpec(tc.ids, tc.throttle); got != tc.want {
			t.Errorf("ArraySpec(%v, %d) = %q, want %q", tc.ids, tc.throttle, got, tc.want)
		}
	}
}

// fakeSlurm puts the fake sbatch, squeue and scancel first on PATH and
// returns their folder of logs and scripted answers.
func fakeSlurm(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("testdata", "slurm"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("FAKE_SLURM", dir)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

// slurmPlan is a 12-trial plan for the Slurm executor.
func slurmPlan(name string) *sweeps.Plan {
	p := &sweeps.Plan{
		Name: name, File: "testdata/" + name + ".toml",
		Source: "name = \"" + name + "\"\n", SourceHash: "hash-" + name,
		Resources: sweeps.Resources{Retries: 1},
		Executor: sweeps.Executor{Kind: "slurm", Partition: "debug", TimeLimit: "10", CPUsPerTask: 2,
			MemPerTask: "1G", GPUsPerTask: 1, Throttle: 3, SbatchArgs: []string{"--qos=low"},
			Setup: "module load python\nsource venv/bin/activate", PollEvery: time.Millisecond},
	}
	for i := range 12 {
		p.Trials = append(p.Trials, sweeps.Trial{
			Sweep: name, ID: fmt.Sprintf("%016x", uint64(i+1)*0x9e3779b97f4a7c15), Index: i,
			Method: "lora", Rank: 4, Task: "toy", Seed: int64(i),
			MethodOptions: map[string]any{"alpha": 8.0, "init": "kaiming", "r": 4},
			Train:         sweeps.TrainConfig{Steps: 5, Batch: 8, LR: 1e-3, Optimizer: "adamw", Schedule: "constant"},
		})
	}
	return p
}

// stageShard writes, as attempt of trial tr would, a shard with status for
// the fake sbatch to play.
func stageShard(t *testing.T, fake string, tr sweeps.Trial, status string, attempt int) {
	t.Helper()
	s := &results.Shard{Trial: results.TrialRow{
		Sweep: tr.Sweep, TrialID: tr.ID, Method: tr.Method, Task: tr.Task, Rank: int64(tr.Rank), Seed: tr.Seed,
		Index: int64(tr.Index), Status: status, Attempts: int64(attempt), Steps: 5,
		TargetLoss: 0.5 + float64(tr.Index), TargetMetric: math.NaN(), RetainLossBefore: math.NaN(),
		RetainLossAfter: math.NaN(), RetainMetricBefore: math.NaN(), RetainMetricAfter: math.NaN(),
		Forgetting: math.NaN(), EffectiveRank: math.NaN(), EnergyRank90: math.NaN(),
	}}
	if status != results.StatusOK {
		s.Trial.Error = "trainer said no"
	}
	if err := results.WriteShard(filepath.Join(fake, fmt.Sprintf("stage-a%d", attempt), fmt.Sprintf("i%d", tr.Index)), s); err != nil {
		t.Fatal(err)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// TestSlurmDriver scripts an array whose tasks end in every way Slurm ends
// a task, and checks what the driver resubmits and records.
func TestSlurmDriver(t *testing.T) {
	// Task states of the first array, by index; "" leaves the task unlisted
	// (cancelled while pending, or purged).
	first := []struct {
		state, reason string
		shard         string // status of the shard the task leaves; "" none
	}{
		0:  {StateCompleted, "None", results.StatusOK},
		1:  {StateFailed, "NonZeroExitCode", results.StatusFailed},
		2:  {StateNodeFail, "None", ""},
		3:  {StateTimeout, "TimeLimit", results.StatusCancelled},
		4:  {"", "", ""},
		5:  {StateUnknown, "None", ""},
		6:  {StateOutOfMemory, "OutOfMemory", ""},
		7:  {StatePreempted, "None", ""},
		8:  {StateCancelled, "None", results.StatusCancelled},
		9:  {StateBootFail, "None", ""},
		10: {StateDeadline, "None", ""},
		11: {StateCompleted, "None", ""}, // ended without a result
	}
	for _, tc := range []struct {
		name    string
		retries int
		detach  bool
	}{
		{"retries=1", 1, false},
		{"retries=0", 0, false},
		{"detach then follow", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakeSlurm(t)
			out := t.TempDir()
			plan := slurmPlan("drv")
			plan.Resources.Retries = tc.retries
			t.Setenv("FAKE_SLURM_SWEEP", filepath.Join(out, plan.Name))

			var squeue strings.Builder
			for i, f := range first {
				if f.state != "" {
					fmt.Fprintf(&squeue, "%d 100 %d %s %s\n", 200+i, i, f.state, f.reason)
				}
				if f.shard != "" {
					stageShard(t, fake, plan.Trials[i], f.shard, 1)
				}
			}
			os.WriteFile(filepath.Join(fake, "squeue-100"), []byte(squeue.String()), 0o644)
			var again []int // resubmitted: every failure but the timeouts
			for i, f := range first {
				if f.shard != results.StatusOK && f.state != StateTimeout && f.state != StateDeadline {
					again = append(again, i)
				}
			}
			for _, i := range again {
				stageShard(t, fake, plan.Trials[i], results.StatusOK, 2)
			}

			var events []Event
			var log strings.Builder
			opts := SlurmOptions{
				Options: Options{Out: out, Now: fixedClock, Events: func(ev Event) { events = append(events, ev) }, Log: &log, Detach: tc.detach},
				Worker:  []string{"/opt/bench"},
			}
			sum, err := RunSlurm(context.Background(), plan, opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.detach {
				if !IsSlurmSweep(sum.Dir) || !strings.Contains(log.String(), "bench status "+sum.Dir) {
					t.Fatalf("detached run: state missing or no follow hint in %q", log.String())
				}
				if sum, err = FollowSlurm(context.Background(), sum.Dir, opts); err != nil {
					t.Fatal(err)
				}
			}

			sb := readLines(t, filepath.Join(fake, "sbatch.log"))
			if len(sb) < 2 || !strings.HasPrefix(sb[0], "--test-only ") {
				t.Fatalf("sbatch calls:\n%s\nwant --test-only, then submissions", strings.Join(sb, "\n"))
			}
			for _, arg := range []string{"--parsable", "--array=0-11%3", "--partition=debug", "--time=10",
				"--cpus-per-task=2", "--mem=1G", "--gpus-per-task=1", "--qos=low", "--job-name=peftbench-drv"} {
				if !strings.Contains(" "+sb[1]+" ", " "+arg+" ") {
					t.Errorf("first submission %q lacks %s", sb[1], arg)
				}
			}
			// Every failure but the timeouts is resubmitted once, with the
			// throttle (those with a result at once, the others once they
			// stay without one).
			var resubmitted []int
			for _, call := range sb[2:] {
				for _, a := range strings.Fields(call) {
					if spec, ok := strings.CutPrefix(a, "--array="); ok {
						spec, throttle, _ := strings.Cut(spec, "%")
						if throttle != "3" {
							t.Errorf("resubmission %s: throttle %q, want 3", a, throttle)
						}
						ids, err := parseTaskList(spec)
						if err != nil {
							t.Fatal(err)
						}
						resubmitted = append(resubmitted, ids...)
					}
				}
			}
			slices.Sort(resubmitted)
			if tc.retries == 0 {
				again = nil
			}
			if !slices.Equal(resubmitted, again) {
				t.Errorf("resubmitted %v, want %v", resubmitted, again)
			}
			if tc.retries > 0 {
				script, err := os.ReadFile(filepath.Join(sum.Dir, SlurmDir, "array-2.sh"))
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{"module load python\nsource venv/bin/activate\n",
					"exec /opt/bench trial --sweep " + sum.Dir + ` --index "$SLURM_ARRAY_TASK_ID" --attempt 2`} {
					if !strings.Contains(string(script), want) {
						t.Errorf("script lacks %q:\n%s", want, script)
					}
				}
			}
			for _, q := range readLines(t, filepath.Join(fake, "squeue.log")) {
				if !strings.HasPrefix(q, "-h -t all -r -j ") {
					t.Errorf("squeue %q: want one batched -h -t all -r -j call", q)
				}
			}

			shards, err := results.ReadShards(sum.Dir)
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range first {
				s := shards[plan.Trials[i].ID]
				if s == nil {
					t.Errorf("trial %d: no shard", i)
					continue
				}
				want, attempts, errHas := results.StatusOK, int64(1), ""
				switch {
				case f.state == StateTimeout || f.state == StateDeadline:
					want, errHas = results.StatusTimeout, strings.ToLower(f.state)
				case f.shard == results.StatusOK:
				case tc.retries > 0:
					attempts = 2
				default:
					want = results.StatusFailed
					errHas = strings.ToLower(f.state)
				}
				if f.state == "" && want == results.StatusFailed {
					errHas = "lost without a result"
				}
				if s.Trial.Status != want || s.Trial.Attempts != attempts || !strings.Contains(s.Trial.Error, errHas) {
					t.Errorf("trial %d (%s): status %s, %d attempts, error %q; want %s, %d, error with %q",
						i, f.state, s.Trial.Status, s.Trial.Attempts, s.Trial.Error, want, attempts, errHas)
				}
			}
			if _, err := os.Stat(filepath.Join(sum.Dir, results.TrialsFile)); err != nil {
				t.Errorf("not compacted: %v", err)
			}
			last := events[len(events)-1]
			if last.Type != EventSweepFinished || last.Progress.Done+last.Progress.Skipped != 12 || last.Progress.Running != 0 {
				t.Errorf("last event %+v", last)
			}
		})
	}
}

// TestSlurmSubmitErrors checks that sbatch's refusals give clear errors
// before anything is written.
func TestSlurmSubmitErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*sweeps.Plan)
		path bool // fake Slurm on PATH
		want []string
	}{
		{"bad partition", func(p *sweeps.Plan) { p.Executor.Partition = "gpu" }, true,
			[]string{"sbatch refused the job array: invalid partition specified: gpu", `partition = "gpu"`, "sinfo -s"}},
		{"no sbatch", nil, false, []string{"sbatch not found on PATH"}},
		{"not slurm", func(p *sweeps.Plan) { p.Executor.Kind = "local" }, true, []string{`executor "local" is not slurm`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path {
				fakeSlurm(t)
			} else {
				t.Setenv("PATH", t.TempDir())
			}
			out := t.TempDir()
			plan := slurmPlan("bad")
			if tc.edit != nil {
				tc.edit(plan)
			}
			_, err := RunSlurm(context.Background(), plan, SlurmOptions{Options: Options{Out: out}, Worker: []string{"/opt/bench"}})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, serr := os.Stat(filepath.Join(out, plan.Name)); serr == nil {
				t.Errorf("results folder created despite %v", err)
			}
		})
	}
}

// TestSlurmInterrupt checks Ctrl-C while following: cancel the arrays, or
// leave them running and say how to follow them.
func TestSlurmInterrupt(t *testing.T) {
	for _, cancelArrays := range []bool{true, false} {
		t.Run(fmt.Sprint("cancel=", cancelArrays), func(t *testing.T) {
			fake := fakeSlurm(t)
			out := t.TempDir()
			plan := slurmPlan("intr")
			t.Setenv("FAKE_SLURM_SWEEP", filepath.Join(out, plan.Name))
			var q strings.Builder
			for i := range plan.Trials {
				fmt.Fprintf(&q, "%d 100 %d RUNNING None\n", 200+i, i)
			}
			os.WriteFile(filepath.Join(fake, "squeue-100"), []byte(q.String()), 0o644)
			ctx, cancel := context.WithCancel(context.Background())
			var asked string
			opts := SlurmOptions{
				Options: Options{Out: out, Events: func(ev Event) {
					if ev.Type == EventTrialStarted && ev.Progress.Running == len(plan.Trials) {
						cancel() // every task seen running
					}
				}, Interrupted: func(work string) bool { asked = work; return cancelArrays }},
				Worker: []string{"/opt/bench"},
			}
			_, err := RunSlurm(ctx, plan, opts)
			if err == nil || !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if asked != "Slurm arrays 100" {
				t.Errorf("asked about %q, want \"Slurm arrays 100\"", asked)
			}
			scancel := readLines(t, filepath.Join(fake, "scancel.log"))
			if cancelArrays {
				if !reflect.DeepEqual(scancel, []string{"100"}) || !strings.Contains(err.Error(), "cancelled") {
					t.Errorf("scancel calls %q, error %q", scancel, err)
				}
			} else if scancel != nil || !strings.Contains(err.Error(), "keep running") || !strings.Contains(err.Error(), "bench status") {
				t.Errorf("scancel calls %q, error %q", scancel, err)
			}
		})
	}
}

// TestRunTrialPlanRoundTrip checks that the plan a task reads back is the
// plan submitted, option types included, and that RunTrial runs the trial
// through the local executor's path with the attempt recorded.
func TestRunTrialPlanRoundTrip(t *testing.T) {
	fake := fakeSlurm(t)
	out := t.TempDir()
	plan := slurmPlan("rt")
	t.Setenv("FAKE_SLURM_SWEEP", filepath.Join(out, plan.Name))
	_ = fake
	sum, err := RunSlurm(context.Background(), plan, SlurmOptions{Options: Options{Out: out, Detach: true}, Worker: []string{"/opt/bench"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadPlan(sum.Dir)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(plan.File)
	want := *slurmPlan("rt")
	want.File = abs
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("plan read back differs:\n got %+v\nwant %+v", got.Trials[0], want.Trials[0])
	}
	if _, ok := got.Trials[0].MethodOptions["r"].(int); !ok {
		t.Errorf("option r read back as %T, want int", got.Trials[0].MethodOptions["r"])
	}

	for _, attempt := range []int{1, 3} {
		// The events carry the attempt of the shard as written: one write,
		// already stamped, since the driver may read or compact it at once.
		var evAttempts []int
		events := func(ev Event) {
			if ev.Type == EventTrialStarted || ev.Type == EventTrialFinished {
				evAttempts = append(evAttempts, ev.Attempt)
			}
		}
		status, err := RunTrial(context.Background(), got, sum.Dir, 5, attempt, Options{Trainer: trainerFunc(toy), Now: fixedClock, Events: events})
		if err != nil || status != results.StatusOK {
			t.Fatalf("attempt %d: status %q, err %v", attempt, status, err)
		}
		if !slices.Equal(evAttempts, []int{attempt, attempt}) {
			t.Errorf("attempt %d: started and finished events carry attempts %v", attempt, evAttempts)
		}
		s, err := results.ReadShard(sum.Dir, got.Trials[5].ID)
		if err != nil {
			t.Fatal(err)
		}
		if s.Trial.Attempts != int64(attempt) || s.Trial.TargetLoss != toyLoss(got.Trials[5], 5) || len(s.Steps) != 5 {
			t.Errorf("attempt %d: shard %+v with %d steps", attempt, s.Trial, len(s.Steps))
		}
	}
	if _, err := RunTrial(context.Background(), got, sum.Dir, 12, 1, Options{Trainer: trainerFunc(toy)}); err == nil {
		t.Error("RunTrial ran an index beyond the plan")
	}
	failing := trainerFunc(func(context.Context, sweeps.Trial, string, Reporter) error { return errors.New("boom") })
	status, err := RunTrial(context.Background(), got, sum.Dir, 2, 1, Options{Trainer: failing})
	if err != nil || status != results.StatusFailed {
		t.Errorf("failing trainer: status %q, err %v; want failed, no error", status, err)
	}
}
