package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"peftbench/analysis"
	"peftbench/results"
	"peftbench/sweeps"
	"peftbench/tasks"
	"peftbench/train"
)

func init() { afterTrialHook = spectraHook }

// spectraCacheDir is where base decompositions persist between runs: the
// spectra folder of the base-model cache ($PEFTBENCH_CACHE/spectra, else
// the user cache dir's peftbench/spectra), beside the base models they come
// from. Entries are named by the content hash of the base matrix, so a
// decomposition is computed once per base model, whatever the sweep.
// "" (memory only) when there is no cache folder.
func spectraCacheDir() string {
	d, err := tasks.DefaultCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "spectra")
}

// baseCache is the one process-wide cache of base decompositions: the
// trials of a sweep share their base, and concurrent trials asking for the
// same matrix share one computation.
var baseCache = sync.OnceValue(func() *analysis.BaseCache { return analysis.NewBaseCache(spectraCacheDir()) })

// spectraHook returns the after-trial analysis of a plan whose [analysis]
// asks for spectra (nil otherwise): the intruder dimensions, spectra and
// ΔW ranks of every targeted layer, read from the trial's weights artifact
// (train.WeightsFile) into its shard. A trainer that wrote no weights
// leaves the spectra columns empty; weights that cannot be analysed fail
// the trial.
func spectraHook(plan *sweeps.Plan) func(ctx context.Context, t sweeps.Trial, dir string, artifacts map[string]string, s *results.Shard) error {
	if !plan.Analysis.Spectra {
		return nil
	}
	opt := analysis.ShardOptions{Eps: plan.Analysis.Epsilons, TopK: plan.Analysis.TopK}
	return func(ctx context.Context, t sweeps.Trial, dir string, artifacts map[string]string, s *results.Shard) error {
		rel, ok := artifacts["weights"]
		if !ok {
			return nil
		}
		path := rel
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, rel)
		}
		layers, err := analysis.ReadLayers(path)
		if err != nil {
			return err
		}
		opt := opt
		opt.Cache = baseCache()
		if err := analysis.FillShard(ctx, s, layers, opt); err != nil {
			return fmt.Errorf("spectra of %s: %w", train.WeightsFile, err)
		}
		return nil
	}
}
