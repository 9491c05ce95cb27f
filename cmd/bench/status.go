package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"syscall"

	"peftbench/results"
	"peftbench/runner"
	"peftbench/sweeps"
)

func init() {
	register(command{
		Name:    "status",
		Order:   30,
		Summary: "show a results folder's trials by status, with the reasons of failures",
		Run:     runStatus,
	})
}

// sweepStatus is what `bench status --json` prints.
type sweepStatus struct {
	Sweep    string         `json:"sweep"`
	Dir      string         `json:"dir"`
	Total    int            `json:"total"`   // trials in the plan
	Pending  int            `json:"pending"` // in the plan, with no result yet
	Counts   map[string]int `json:"counts"`  // results by status
	Problems []trialProblem `json:"problems,omitempty"`
	Tune     *tuneStatus    `json:"tune,omitempty"` // tune sweeps only (status_tune.go)
}

type trialProblem struct {
	TrialID string `json:"trial_id"`
	Index   int64  `json:"index"`
	Method  string `json:"method"`
	Rank    int64  `json:"rank"`
	Task    string `json:"task"`
	Seed    int64  `json:"seed"`
	// Settings are the settings the sweep varies besides method, rank,
	// task and seed (sweeps.Swept), e.g. "lr=1e-3 α=16": what tells
	// apart trials that the columns above do not.
	Settings string `json:"settings,omitempty"`
	Status   string `json:"status"`
	Error    string `json:"error"`
	Step     *int64 `json:"diverged_step,omitempty"`
	// Running trials (status_live.go): the attempt and last step in
	// their live log.
	Attempt  int    `json:"attempt,omitempty"`
	LastStep *int64 `json:"last_step,omitempty"`
}

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print the status as JSON")
	noFollow := fs.Bool("no-follow", false, "sweeps submitted to run outside bench: report what is recorded without following them")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bench status DIR [--json] [--no-follow]")
		fs.PrintDefaults()
	}
	dir, err := parseResultsDirArgs(fs, args)
	if err != nil {
		return err
	}
	if executor, ok := runner.FollowerOf(dir); ok && !*noFollow {
		// A submitted sweep (e.g. a job array): follow it to the end
		// (resubmitting failed trials), then report.
		ctx, stop := signalContext(os.Interrupt, syscall.SIGTERM)
		defer stop()
		opts := runner.Options{Events: runner.NewLines(stderr), Log: stderr, Interrupted: askCancel(os.Stdin, stderr)}
		closeBar := func() {}
		if isTerminal(stderr) {
			bar := progressBar(stderr)
			opts.Events, opts.Log = bar.Event, bar
			opts.Interrupted = pausing(bar, opts.Interrupted)
			closeBar = func() { bar.Close() }
		}
		_, err := executor.Follow(ctx, dir, opts)
		closeBar()
		if err != nil {
			return fmt.Errorf("bench status: %w", err)
		}
	}
	st, err := readStatus(dir)
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(stdout, st)
	}
	fmt.Fprintf(stdout, "sweep %s (%s): %d trials, %d pending\n", st.Sweep, st.Dir, st.Total, st.Pending)
	if st.Tune != nil {
		fmt.Fprintf(stdout, "  tune: %s\n", st.Tune.Note)
	}
	var names []string
	for k := range st.Counts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(stdout, "  %-9s %d\n", k, st.Counts[k])
	}
	if len(st.Problems) > 0 {
		fmt.Fprintln(stdout)
		settings := slices.ContainsFunc(st.Problems, func(p trialProblem) bool { return p.Settings != "" })
		head := []string{"TRIAL", "STATUS", "METHOD", "RANK", "TASK", "SEED", "REASON"}
		if settings {
			head = slices.Insert(head, 6, "SETTINGS")
		}
		t := newTable(stdout, head...)
		for _, p := range st.Problems {
			row := []string{p.TrialID, p.Status, p.Method, fmt.Sprint(p.Rank), p.Task, fmt.Sprint(p.Seed), firstLine(p.Error)}
			if settings {
				row = slices.Insert(row, 6, p.Settings)
			}
			t.row(row...)
		}
		return t.flush()
	}
	return nil
}

// statusDamaged counts the trials whose shard cannot be read (its error
// names the file and the remedy); it is no trial status a runner records.
const statusDamaged = "damaged"

// readStatus reads a results folder's manifest and trial shards.
func readStatus(dir string) (*sweepStatus, error) {
	m, err := results.ReadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("bench status: %s is not a results folder: %w", dir, err)
	}
	// A damaged shard is reported with its remedy, not allowed to hide
	// the other trials' status.
	shards, damaged, err := results.ScanShards(dir)
	if err != nil {
		return nil, fmt.Errorf("bench status: %w", err)
	}
	st := &sweepStatus{Sweep: m.Sweep, Dir: dir, Counts: map[string]int{}}
	trials, err := manifestTrials(m)
	if err != nil {
		return nil, err
	}
	st.Total = len(trials)
	st.Tune = readTuneStatus(dir, m)
	swept := sweeps.Swept(trials)
	settings := make(map[string]string, len(trials))
	for _, t := range trials {
		settings[t.ID] = t.Settings(swept)
	}
	var ids []string
	for id := range shards {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return shards[ids[i]].Trial.Index < shards[ids[j]].Trial.Index })
	for _, id := range ids {
		r := shards[id].Trial
		st.Counts[r.Status]++
		// A trial early stopping did not promote ended as planned: counted,
		// not listed as a problem.
		if r.Status != results.StatusOK && r.Status != results.StatusStopped {
			p := trialProblem{TrialID: r.TrialID, Index: r.Index, Method: r.Method, Rank: r.Rank, Task: r.Task, Seed: r.Seed,
				Settings: settings[r.TrialID], Status: r.Status, Error: r.Error}
			if r.Status == results.StatusDiverged {
				s := r.DivergedStep
				p.Step = &s
			}
			st.Problems = append(st.Problems, p)
		}
	}
	var bad []string
	for id := range damaged {
		bad = append(bad, id)
	}
	sort.Strings(bad)
	for _, id := range bad {
		st.Counts[statusDamaged]++
		st.Problems = append(st.Problems, trialProblem{TrialID: id, Index: -1, Status: statusDamaged, Error: damaged[id].Error()})
	}
	live, err := liveProblems(dir, trials, func(id string) bool { return shards[id] != nil || damaged[id] != nil }, settings)
	if err != nil {
		return nil, err
	}
	if len(live) > 0 {
		st.Counts[statusRunning] = len(live)
		st.Problems = append(live, st.Problems...)
	}
	st.Pending = max(0, st.Total-len(shards)-len(damaged)-len(live))
	return st, nil
}

// manifestTrials returns the trials of the manifest's plan.
func manifestTrials(m *results.Manifest) ([]sweeps.Trial, error) {
	if len(m.Trials) == 0 {
		return nil, nil
	}
	var trials []sweeps.Trial
	if err := json.Unmarshal(m.Trials, &trials); err != nil {
		return nil, errors.New("bench status: manifest.json: trials: " + err.Error())
	}
	return trials, nil
}
