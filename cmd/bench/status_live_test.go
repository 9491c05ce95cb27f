package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// TestStatusLive: a trial with a live log and no shard is counted and
// listed running, with its attempt and last step; one whose shard is
// written beside a leftover log is the shard's status only (the shard
// wins); pending counts neither. Catches: status ignoring live logs, or
// counting a finished trial twice.
func TestStatusLive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lv")
	var trials []sweeps.Trial
	for i := range 3 {
		trials = append(trials, sweeps.Trial{Sweep: "lv", ID: fmt.Sprintf("t%d", i), Index: i, Method: "lora", Rank: 4,
			Task: "teacher-shift", Seed: int64(i), Train: sweeps.TrainConfig{Steps: 200}})
	}
	raw, _ := json.Marshal(trials)
	if err := results.WriteManifest(dir, &results.Manifest{Sweep: "lv", Trials: raw}); err != nil {
		t.Fatal(err)
	}
	row := results.TrialRow{Sweep: "lv", TrialID: "t0", Index: 0, Task: "teacher-shift", Method: "lora", Rank: 4, Status: results.StatusOK}
	row.ClearMetrics()
	if err := results.WriteShard(dir, &results.Shard{Trial: row}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"t0", "t1"} {
		l, err := results.CreateLive(dir, id, 2, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		l.Append(130, "train", "loss", 0.5)
		l.Append(140, "train", "loss", 0.25)
		l.Append(140, "train", "lr", 1e-3)
		l.Close()
	}
	st, err := readStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 1 || st.Counts[statusRunning] != 1 || st.Counts[results.StatusOK] != 1 {
		t.Errorf("pending %d, counts %v; want 1 pending, 1 running, 1 ok", st.Pending, st.Counts)
	}
	if len(st.Problems) != 1 || st.Problems[0].TrialID != "t1" || st.Problems[0].Attempt != 2 ||
		st.Problems[0].LastStep == nil || *st.Problems[0].LastStep != 140 {
		t.Fatalf("problems %+v, want t1 running at attempt 2, step 140", st.Problems)
	}
	var out, errb bytes.Buffer
	if err := runStatus([]string{dir, "--no-follow"}, &out, &errb); err != nil {
		t.Fatalf("bench status: %v\n%s", err, errb.String())
	}
	for _, want := range []string{"3 trials, 1 pending", "running   1", "t1", "attempt 2, step 140 of 200 (train loss 0.25 at step 140)", "interrupted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("bench status output lacks %q:\n%s", want, out.String())
		}
	}
}
