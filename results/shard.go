package results

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ShardDir returns the folder of one trial's shard: sweepDir/trials/<id>.
// The runner may keep the trial's log and artifacts there too.
func ShardDir(sweepDir, trialID string) string {
	return filepath.Join(sweepDir, TrialsDir, trialID)
}

func checkID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, `/\`) || isTemp(id) {
		return fmt.Errorf("results: invalid trial ID %q", id)
	}
	return nil
}

// WriteShard writes everything one trial produced to
// sweepDir/trials/<id>/{steps,spectra,trial}.parquet. Each file is written
// atomically and trial.parquet last: it marks the shard complete. An
// earlier trial.parquet is removed first, so a crash while rewriting a
// shard leaves it incomplete, never mixed.
func WriteShard(sweepDir string, s *Shard) error {
	id := s.Trial.TrialID
	if err := checkID(id); err != nil {
		return err
	}
	for i := range s.Steps {
		if s.Steps[i].TrialID != id {
			return fmt.Errorf("results: shard %s: step row %d has trial ID %q", id, i, s.Steps[i].TrialID)
		}
	}
	for i := range s.Spectra {
		if s.Spectra[i].TrialID != id {
			return fmt.Errorf("results: shard %s: spectrum row %d has trial ID %q", id, i, s.Spectra[i].TrialID)
		}
	}
	dir := ShardDir(sweepDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := removeDurably(filepath.Join(dir, shardTrialFile)); err != nil {
		return err
	}
	if err := writeTable(filepath.Join(dir, StepsFile), toStepRecords(s.Steps)); err != nil {
		return err
	}
	if err := writeTable(filepath.Join(dir, SpectraFile), toSpectrumRecords(s.Spectra)); err != nil {
		return err
	}
	return writeTable(filepath.Join(dir, shardTrialFile), []trialRecord{toTrialRecord(&s.Trial)})
}

// shardTrialFile holds a shard's one trials row; its presence marks the
// shard complete.
const shardTrialFile = "trial.parquet"

// ReadShard reads one trial's shard. It returns an error wrapping
// fs.ErrNotExist when the shard is not complete.
func ReadShard(sweepDir, trialID string) (*Shard, error) {
	if err := checkID(trialID); err != nil {
		return nil, err
	}
	dir := ShardDir(sweepDir, trialID)
	trials, err := ReadTrials(filepath.Join(dir, shardTrialFile))
	if err != nil {
		return nil, err
	}
	if len(trials) != 1 || trials[0].TrialID != trialID {
		return nil, fmt.Errorf("results: %s: want one row for trial %s, have %d", filepath.Join(dir, shardTrialFile), trialID, len(trials))
	}
	s := &Shard{Trial: trials[0]}
	if s.Steps, err = ReadSteps(filepath.Join(dir, StepsFile)); err != nil {
		return nil, err
	}
	if s.Spectra, err = ReadSpectra(filepath.Join(dir, SpectraFile)); err != nil {
		return nil, err
	}
	return s, nil
}

// ReadShards reads every complete shard under sweepDir/trials, keyed by
// trial ID. Incomplete shards (a crash before trial.parquet was renamed
// into place) and temp files are skipped; a damaged file is an error
// naming it. A sweep folder without trials gives an empty map.
func ReadShards(sweepDir string) (map[string]*Shard, error) {
	entries, err := os.ReadDir(filepath.Join(sweepDir, TrialsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*Shard{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	shards := make(map[string]*Shard, len(entries))
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || strings.HasPrefix(id, ".") {
			continue
		}
		s, err := ReadShard(sweepDir, id)
		if errors.Is(err, fs.ErrNotExist) && !shardFileExists(sweepDir, id) {
			continue
		}
		if err != nil {
			return nil, err
		}
		shards[id] = s
	}
	return shards, nil
}

func shardFileExists(sweepDir, id string) bool {
	_, err := os.Stat(filepath.Join(ShardDir(sweepDir, id), shardTrialFile))
	return err == nil
}
