package results

import (
	"cmp"
	"path/filepath"
	"slices"
)

// Compact merges the complete shards under sweepDir into
// sweepDir/trials.parquet, steps.parquet and spectra.parquet, each written
// atomically. Trials are in plan index order (trial ID breaks ties); steps
// and spectra follow their trial, steps ordered by step, rows of equal step
// in the order the trainer reported them. Equal shards give equal bytes,
// and the tables are written, with their schema, even when empty.
func Compact(sweepDir string) error {
	shards, err := ReadShards(sweepDir)
	if err != nil {
		return err
	}
	ordered := make([]*Shard, 0, len(shards))
	for _, s := range shards {
		ordered = append(ordered, s)
	}
	slices.SortFunc(ordered, func(a, b *Shard) int {
		return cmp.Or(cmp.Compare(a.Trial.Index, b.Trial.Index), cmp.Compare(a.Trial.TrialID, b.Trial.TrialID))
	})
	trials := make([]trialRecord, 0, len(ordered))
	var steps []stepRecord
	var spectra []spectrumRecord
	for _, s := range ordered {
		trials = append(trials, toTrialRecord(&s.Trial))
		st := toStepRecords(s.Steps)
		slices.SortStableFunc(st, func(a, b stepRecord) int { return cmp.Compare(a.Step, b.Step) })
		steps = append(steps, st...)
		spectra = append(spectra, toSpectrumRecords(s.Spectra)...)
	}
	if err := writeTable(filepath.Join(sweepDir, StepsFile), steps); err != nil {
		return err
	}
	if err := writeTable(filepath.Join(sweepDir, SpectraFile), spectra); err != nil {
		return err
	}
	return writeTable(filepath.Join(sweepDir, TrialsFile), trials)
}
