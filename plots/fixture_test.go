package plots

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"peftbench/results"
)

var update = flag.Bool("update", false, "regenerate testdata/fixture and the golden images")

const fixtureDir = "testdata/fixture"

// fixtureSweep is the sweep the fixture pretends to have run.
const fixtureSweep = `# Synthetic sweep for the plots golden tests.
name = "fixture"
description = "Five methods x four ranks x two tasks x three seeds, synthetic."
methods = ["full", "lora", "rslora", "pissa", "vera"]
ranks = [2, 4, 8, 16]
tasks = ["teacher-shift", "safety-guard"]
seeds = [0, 1, 2]
`

var fixtureEps = []float64{0.3, 0.5, 0.7}

// fixtureShards generates the fixture's trials from closed forms plus
// seeded noise, shaped like the papers' findings: accuracy rises with rank,
// forgetting follows a shifted power law in P, low ranks have intruders,
// full fine-tuning none. One trial failed and one diverged, to exercise
// the report.
func fixtureShards() []*results.Shard {
	const (
		dim    = 64
		layers = 4
		k      = 10
		steps  = 200
	)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var out []*results.Shard
	idx := int64(0)
	for _, task := range []string{"teacher-shift", "safety-guard"} {
		for _, method := range []string{"full", "lora", "rslora", "pissa", "vera"} {
			ranks := []int64{2, 4, 8, 16}
			if method == "full" {
				ranks = []int64{0}
			}
			for _, rank := range ranks {
				for seed := int64(0); seed < 3; seed++ {
					rng := rand.New(rand.NewPCG(uint64(idx)+1, 42))
					noise := func(s float64) float64 { return s * rng.NormFloat64() }
					id := fmt.Sprintf("%x", sha256.Sum256([]byte(fmt.Sprint(task, method, rank, seed))))[:12]
					var P int64
					var eff float64 // effective capacity in (0, 1]
					switch method {
					case "full":
						P, eff = layers*dim*dim, 1
					case "vera":
						P, eff = layers*(dim+rank), 0.25+0.04*float64(rank)
					default:
						P, eff = layers*rank*2*dim, 1-math.Exp(-float64(rank)/5)
					}
					if method == "rslora" {
						eff = math.Min(1, eff*1.1)
					}
					acc := 0.55 + 0.38*eff + noise(0.012)
					tl := -math.Log(acc) + noise(0.01)
					forget := 0.01 + 0.0009*math.Pow(float64(P), 0.45) + noise(0.004)
					if method == "pissa" {
						forget *= 1.15
					}
					row := results.TrialRow{
						Sweep: "fixture", TrialID: id, Method: method, Task: task, Rank: rank, Seed: seed, Index: idx,
						Config: fmt.Sprintf(`{"method":%q,"rank":%d,"seed":%d,"task":%q}`, method, rank, seed, task),
						Status: results.StatusOK, Attempts: 1,
						TrainableParams: P, TotalParams: layers*dim*dim + P, Steps: steps,
						WallSeconds: 2 + float64(P)/4000 + noise(0.1), PeakMemBytes: 1<<20 + 64*P,
						TargetLoss: tl, TargetMetric: acc,
						RetainLossBefore: 0.2, RetainLossAfter: 0.2 + forget*1.3,
						RetainMetricBefore: 0.97, RetainMetricAfter: 0.97 - forget*0.8,
						Forgetting:    forget,
						EffectiveRank: 3 + 5*eff, EnergyRank90: 1 + 6*eff,
						StartedAt: t0.Add(time.Duration(idx) * time.Second), EndedAt: t0.Add(time.Duration(idx)*time.Second + 3*time.Second),
						Host: "fixture",
					}
					// The base model (eff = 0) on the target set, which
					// the figures draw as the step-0 reference.
					row.Extra = map[string]float64{"target_metric_before": 0.55, "target_loss_before": -math.Log(0.55)}
					if task == "safety-guard" {
						row.Extra["refusal_retention"] = math.Max(0, 0.95-0.5*eff-0.6*forget+noise(0.02))
						row.Extra["refusal_base"] = 0.95
					}
					sh := &results.Shard{}
					// Steps: train loss every 10, eval accuracy and forgetting every 20.
					for s := int64(10); s <= steps; s += 10 {
						frac := float64(s) / steps
						sh.Steps = append(sh.Steps, results.StepRow{TrialID: id, Step: s, Split: "train", Metric: "loss",
							Value: tl + 0.9*math.Exp(-4*frac) + noise(0.02)})
						if s%20 == 0 {
							sh.Steps = append(sh.Steps,
								results.StepRow{TrialID: id, Step: s, Split: "eval", Metric: "accuracy",
									Value: acc - 0.35*math.Exp(-4*frac) + noise(0.01)},
								results.StepRow{TrialID: id, Step: s, Split: "retain", Metric: "forgetting",
									Value: 0.01 + (forget-0.01)*math.Pow(frac, 0.6) + noise(0.002)})
						}
					}
					// Spectra: top-k directions of each layer; low ranks
					// rotate the top directions away from the base.
					counts := make([]int64, len(fixtureEps))
					for l := range layers {
						for j := range int64(k) {
							base := 6 / math.Pow(float64(j)+1, 0.7)
							tuned := base * (1 + 0.1*eff + noise(0.01))
							cos := 0.97 - 0.02*float64(j) + noise(0.02)
							if method != "full" && j < int64(4-int(math.Log2(float64(rank)))+l%2) {
								// An intruder: a new direction at the top.
								cos = 0.15 + 0.1*float64(rank)/16 + 0.25*float64(j)/4 + noise(0.03)
								tuned = base*1.4 + 0.3
							}
							cos = math.Max(0, math.Min(1, cos))
							flags := make([]bool, len(fixtureEps))
							for e, eps := range fixtureEps {
								flags[e] = cos < eps
								if flags[e] {
									counts[e]++
								}
							}
							sh.Spectra = append(sh.Spectra, results.SpectrumRow{TrialID: id, Layer: fmt.Sprintf("blocks.%d.mlp.fc1", l),
								Index: j, SigmaBase: base, SigmaTuned: tuned, MaxCos: cos, Intruder: flags})
						}
					}
					for e, eps := range fixtureEps {
						row.Intruders = append(row.Intruders, results.IntruderCount{Epsilon: eps, Count: counts[e]})
					}
					// One failure and one divergence.
					switch {
					case task == "teacher-shift" && method == "vera" && rank == 2 && seed == 2:
						row.ClearMetrics()
						row.Intruders, row.Extra = nil, nil
						row.Status, row.Error = results.StatusFailed, "trainer: exit status 2: vera: rank 2 below the minimum of 4"
						sh.Steps, sh.Spectra = nil, nil
					case task == "teacher-shift" && method == "rslora" && rank == 16 && seed == 1:
						row.ClearMetrics()
						row.Intruders, row.Extra = nil, nil
						row.Status, row.Error, row.DivergedStep = results.StatusDiverged, "loss is NaN at step 87", 87
						sh.Steps, sh.Spectra = sh.Steps[:8], nil
					}
					sh.Trial = row
					out = append(out, sh)
					idx++
				}
			}
		}
	}
	return out
}

// writeFixture writes the fixture tables and manifest to dir, through the
// results package's own shard writer and compaction.
func writeFixture(dir string) error {
	work, err := os.MkdirTemp("", "plots-fixture")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for _, s := range fixtureShards() {
		if err := results.WriteShard(work, s); err != nil {
			return err
		}
	}
	if err := results.Compact(work); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{results.TrialsFile, results.StepsFile, results.SpectraFile} {
		b, err := os.ReadFile(filepath.Join(work, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	m := &results.Manifest{
		Sweep: "fixture", Description: "Five methods x four ranks x two tasks x three seeds, synthetic.",
		SweepFile: "experiments/fixture.toml", SweepSource: fixtureSweep,
		SourceHash: fmt.Sprintf("%x", sha256.Sum256([]byte(fixtureSweep))),
		GitCommit:  "0123456789abcdef0123456789abcdef01234567", GoVersion: "go1.26.8", Host: "fixture",
		HarnessVersion: "dev",
		Started:        time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Ended: time.Date(2026, 1, 2, 3, 9, 0, 0, time.UTC),
	}
	return results.WriteManifest(dir, m)
}

// TestMain regenerates the committed fixture under -update, before any
// test reads it.
func TestMain(m *testing.M) {
	flag.Parse()
	if *update {
		if err := writeFixture(fixtureDir); err != nil {
			fmt.Fprintln(os.Stderr, "plots: regenerate fixture:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}
