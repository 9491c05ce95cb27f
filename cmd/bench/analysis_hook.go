package main

import (
	"context"
	"fmt"
	"path/filepath"

	"peftbench/analysis"
	"peftbench/results"
	"peftbench/sweeps"
	"peftbench/tasks"
	"peftbench/train"
)

// spectraHook returns the after-trial analysis of a plan whose [analysis]
// asks for spectra (nil otherwise): the intruder dimensions, spectra and
// ΔW ranks of every targeted layer, read from the trial's weights artifact
// (train.WeightsFile) into its shard. A trainer that wrote no weights
// leaves the spectra columns empty; weights that cannot be analysed fail
// the trial.
//
// Base decompositions persist in the spectra folder of the base-model cache
// (cache.Dir()/spectra), beside the base models they come from, named by
// the content hash of the base matrix: each is computed once per base
// model, whatever the sweep, and concurrent trials asking for the same
// matrix share one computation.
func spectraHook(plan *sweeps.Plan, cache *tasks.Cache) func(ctx context.Context, t sweeps.Trial, dir string, artifacts map[string]string, s *results.Shard) error {
	if !plan.Analysis.Spectra {
		return nil
	}
	bases := analysis.NewBaseCache(filepath.Join(cache.Dir(), "spectra"))
	bases.Log = cache.Log // a damaged decomposition recomputed: warned where a damaged base model is
	opt := analysis.ShardOptions{Eps: plan.Analysis.Epsilons, TopK: plan.Analysis.TopK, Cache: bases}
	return func(ctx context.Context, t sweeps.Trial, dir string, artifacts map[string]string, s *results.Shard) error {
		rel, ok := artifacts["weights"]
		if !ok {
			return nil
		}
		path, err := results.ArtifactPath(dir, "weights", rel)
		if err != nil {
			return err
		}
		layers, err := analysis.ReadLayers(path)
		if err != nil {
			return err
		}
		if err := analysis.FillShard(ctx, s, layers, opt); err != nil {
			return fmt.Errorf("spectra of %s: %w", train.WeightsFile, err)
		}
		return nil
	}
}
