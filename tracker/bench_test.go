package tracker_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"peftbench/results"
	"peftbench/tracker"
)

// syntheticFolder writes a compacted results folder of n trials (two
// seeds per learning rate) with steps steps of three metrics each.
func syntheticFolder(b *testing.B, n, steps int) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "synthetic")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("%016x", i+1)
		lr := 1e-4 * float64(1+i/2)
		cfg := fmt.Sprintf(`{"sweep":"synthetic","trial_id":%q,"index":%d,"method":"lora","rank":8,"task":"teacher-shift","seed":%d,`+
			`"method_options":{"alpha":16},"task_options":{"hidden":64},"train":{"steps":%d,"batch":32,"lr":%g,"optimizer":"adamw"}}`, id, i, i%2, steps, lr)
		r := results.TrialRow{Sweep: "synthetic", TrialID: id, Index: int64(i), Method: "lora", Rank: 8, Task: "teacher-shift",
			Seed: int64(i % 2), Config: cfg, Status: results.StatusOK, Attempts: 1, Steps: int64(steps),
			StartedAt: t0.Add(time.Duration(i) * time.Minute), EndedAt: t0.Add(time.Duration(i)*time.Minute + 30*time.Second)}
		r.ClearMetrics()
		r.MitigateLambda = math.NaN()
		r.SetMetric("target_metric", 0.5+float64(i)/float64(4*n))
		r.SetMetric("forgetting", 0.1)
		sh := &results.Shard{Trial: r}
		for s := 1; s <= steps; s++ {
			for _, m := range []string{"loss", "grad_norm", "lr"} {
				sh.Steps = append(sh.Steps, results.StepRow{TrialID: id, Step: int64(s), Split: "train", Metric: m, Value: 1 / float64(s)})
			}
		}
		if err := results.WriteShard(dir, sh); err != nil {
			b.Fatal(err)
		}
	}
	if err := results.Compact(dir); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkExport: loading a folder of 100 trials × 1000 steps × 3
// metrics (300,000 step rows) and writing it in each format.
func BenchmarkExport(b *testing.B) {
	dir := syntheticFolder(b, 100, 1000)
	for _, format := range []string{"tensorboard", "mlflow"} {
		b.Run(format, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				s, _, err := tracker.Load(dir)
				if err != nil {
					b.Fatal(err)
				}
				out := filepath.Join(b.TempDir(), fmt.Sprint(i))
				if format == "tensorboard" {
					_, err = tracker.WriteTensorBoard(out, []*tracker.Sweep{s})
				} else {
					_, err = tracker.WriteMLflow(out, []*tracker.Sweep{s})
				}
				if err != nil {
					b.Fatal(err)
				}
				os.RemoveAll(out)
			}
		})
	}
}
