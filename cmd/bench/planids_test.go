package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"peftbench/lmfolder"
)

// TestExperimentTrialIDs pins the trial IDs of every experiment in
// experiments/: a refactor must not change what a trial is (results
// resume by ID, baselines compare by configuration). A deliberate change
// updates testdata/plan-ids.txt with -update and says why in its commit.
func TestExperimentTrialIDs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "experiments", "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no experiments: %v", err)
	}
	// experiments/lm-quick.toml reads its checkpoint and data from
	// $PEFTBENCH_LM_QUICK: write them as its comment says (make-lm output is
	// byte-identical for the same flags, and the IDs hash content, so they
	// are pinned too).
	lmq := t.TempDir()
	if _, _, err := lmfolder.Write(filepath.Join(lmq, "model"), lmfolder.Spec{Family: "neox"}); err != nil {
		t.Fatal(err)
	}
	if _, err := lmfolder.WriteData(filepath.Join(lmq, "data"), 0); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PEFTBENCH_LM_QUICK", lmq)
	var got bytes.Buffer
	for _, f := range files {
		var out, errb bytes.Buffer
		if err := runPlan([]string{"--json", f}, &out, &errb); err != nil {
			t.Fatalf("bench plan %s: %v\n%s", f, err, errb.String())
		}
		var plan struct {
			Name   string `json:"name"`
			Trials []struct {
				ID string `json:"trial_id"`
			} `json:"trials"`
		}
		if err := json.Unmarshal(out.Bytes(), &plan); err != nil {
			t.Fatalf("bench plan --json %s: %v", f, err)
		}
		fmt.Fprintf(&got, "%s %d trials\n", plan.Name, len(plan.Trials))
		for _, tr := range plan.Trials {
			fmt.Fprintf(&got, "%s\n", tr.ID)
		}
	}
	checkGolden(t, "plan-ids.txt", "experiments' trial IDs", got.Bytes())
}
