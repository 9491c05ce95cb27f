package results

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/parquet-go/parquet-go"
)

// Compact merges the complete shards under sweepDir into
// sweepDir/trials.parquet, steps.parquet and spectra.parquet, written
// atomically with their checksums.json, which also records the shards they
// were compacted from (see TablesStale). Trials are in plan index order
// (trial ID breaks ties); steps and spectra follow their trial, steps
// ordered by step, rows of equal step in the order the trainer reported
// them. trials.parquet has a column per hyperparameter of the trials'
// Configs besides its fixed ones (see encodeTrials). Equal shards give
// equal bytes, and the tables are written, with their schema, even when
// empty. A damaged shard is an error naming it.
func Compact(sweepDir string) error {
	shards, digests, bad, err := readShards(sweepDir)
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return bad[slices.Min(slices.Collect(maps.Keys(bad)))]
	}
	ordered := make([]*Shard, 0, len(shards))
	for _, s := range shards {
		ordered = append(ordered, s)
	}
	slices.SortFunc(ordered, func(a, b *Shard) int {
		return cmp.Or(cmp.Compare(a.Trial.Index, b.Trial.Index), cmp.Compare(a.Trial.TrialID, b.Trial.TrialID))
	})
	trials := make([]TrialRow, 0, len(ordered))
	var steps []stepRecord
	var spectra []spectrumRecord
	for _, s := range ordered {
		trials = append(trials, s.Trial)
		st := toStepRecords(s.Steps)
		slices.SortStableFunc(st, func(a, b stepRecord) int { return cmp.Compare(a.Step, b.Step) })
		steps = append(steps, st...)
		spectra = append(spectra, toSpectrumRecords(s.Spectra)...)
	}
	names := []string{StepsFile, SpectraFile, TrialsFile}
	data := make([][]byte, len(names))
	if err := parallel(len(names), func(i int) (err error) {
		switch names[i] {
		case StepsFile:
			data[i], err = encode(steps, tableCodec)
		case SpectraFile:
			data[i], err = encode(spectra, tableCodec)
		default:
			data[i], err = encodeTrials(trials, parquet.Compression(tableCodec))
		}
		if err != nil {
			err = fmt.Errorf("results: encode %s: %w", names[i], err)
		}
		return err
	}); err != nil {
		return err
	}
	c := &checksums{Files: map[string]string{}, Shards: digests}
	for i, name := range names {
		c.Files[name] = sum(data[i])
	}
	// The tables are renamed into place in this order, trials.parquet and
	// its checksums last.
	return writeFilesAtomic(sweepDir, append(names, ChecksumsFile), append(data, encodeChecksums(c)))
}
