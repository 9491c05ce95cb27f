package runner

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"peftbench/sweeps"
)

// gpuSlots groups the sweep's GPUs into slots of GPUsPerTrial devices; each
// slot is held by one trial at a time. It returns nil when the sweep uses no
// GPUs. With gpus = "auto" the devices are those nvidia-smi lists (the first
// nvidia-smi on PATH).
func gpuSlots(ctx context.Context, res sweeps.Resources) ([][]string, error) {
	ids := res.GPUs
	if res.GPUsAuto {
		var err error
		if ids, err = discoverGPUs(ctx); err != nil {
			return nil, err
		}
	}
	if len(ids) == 0 {
		if res.GPUsPerTrial > 0 && !res.GPUsAuto {
			return nil, fmt.Errorf("runner: gpus_per_trial = %d but no gpus listed", res.GPUsPerTrial)
		}
		if res.GPUsAuto {
			return nil, fmt.Errorf("runner: gpus = \"auto\" but nvidia-smi lists no GPU")
		}
		return nil, nil
	}
	per := max(res.GPUsPerTrial, 1)
	if per > len(ids) {
		return nil, fmt.Errorf("runner: gpus_per_trial = %d but only %d GPUs (%s)", per, len(ids), strings.Join(ids, ","))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || strings.ContainsAny(id, ", \t\n") {
			return nil, fmt.Errorf("runner: invalid GPU id %q", id)
		}
		if seen[id] {
			return nil, fmt.Errorf("runner: GPU %s listed twice", id)
		}
		seen[id] = true
	}
	var slots [][]string
	for i := 0; i+per <= len(ids); i += per {
		slots = append(slots, ids[i:i+per:i+per])
	}
	return slots, nil
}

// discoverGPUs lists GPU indices with nvidia-smi.
func discoverGPUs(ctx context.Context) ([]string, error) {
	path, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return nil, fmt.Errorf("runner: gpus = \"auto\": %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--query-gpu=index", "--format=csv,noheader").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("runner: gpus = \"auto\": nvidia-smi: %w", err)
	}
	var ids []string
	for _, line := range strings.Split(string(out), "\n") {
		if id := strings.TrimSpace(line); id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
