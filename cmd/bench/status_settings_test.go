package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/results"
	"peftbench/sweeps"
)

// TestStatusSettingsGolden: bench status tells apart failed trials that
// differ only in a swept setting (lr here), as a table and as JSON.
func TestStatusSettingsGolden(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lrs")
	var plan []sweeps.Trial
	for i, lr := range []float64{1e-3, 3e-3, 1e-2} {
		plan = append(plan, sweeps.Trial{Sweep: "lrs", ID: fmt.Sprintf("t%d", i), Index: i, Method: "lora", Rank: 4, Task: "mlp",
			MethodOptions: map[string]any{"alpha": 8.0}, Train: sweeps.TrainConfig{Steps: 10, LR: lr}})
	}
	trials, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := results.WriteManifest(dir, &results.Manifest{Sweep: "lrs", Trials: trials}); err != nil {
		t.Fatal(err)
	}
	for i, status := range []string{results.StatusFailed, results.StatusFailed, results.StatusOK} {
		row := results.TrialRow{Sweep: "lrs", TrialID: plan[i].ID, Index: int64(i), Task: "mlp", Method: "lora", Rank: 4, Status: status}
		row.ClearMetrics()
		if status == results.StatusFailed {
			row.Error = "trainer crashed"
		}
		if err := results.WriteShard(dir, &results.Shard{Trial: row}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		args   []string
		golden string
	}{
		{[]string{dir}, "status-settings.txt"},
		{[]string{dir, "--json"}, "status-settings.json"},
	} {
		var out, errb bytes.Buffer
		if err := runStatus(c.args, &out, &errb); err != nil {
			t.Fatalf("bench status: %v\n%s", err, errb.String())
		}
		got := strings.ReplaceAll(out.String(), dir, "DIR")
		checkGolden(t, c.golden, fmt.Sprintf("bench status %v", c.args), []byte(got))
	}
}
