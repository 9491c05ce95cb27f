package results

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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

// Shard file names inside sweepDir/trials/<id>/. A shard is complete when
// all three exist.
var shardFiles = []string{StepsFile, SpectraFile, shardTrialFile}

// shardTrialFile holds a shard's one trials row.
const shardTrialFile = "trial.parquet"

// ErrIncomplete is returned by ReadShard for a trial whose shard is absent
// or was not completely written (a crash or kill mid-write).
var ErrIncomplete = errors.New("results: shard incomplete")

// WriteShard writes everything one trial produced to
// sweepDir/trials/<id>/{trial,steps,spectra}.parquet, durably: when it
// returns nil the shard survives a crash or power loss. Each file is
// written to a temp name, synced and renamed; the directories are synced
// last. A shard is complete only when all three files exist, and files of
// an earlier shard of the same trial are removed (durably) first, so a
// crash at any point leaves the shard either complete or incomplete, never
// mixed or truncated.
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
	steps, err := encode(toStepRecords(s.Steps), shardCodec)
	if err != nil {
		return fmt.Errorf("results: shard %s: %w", id, err)
	}
	spectra, err := encode(toSpectrumRecords(s.Spectra), shardCodec)
	if err != nil {
		return fmt.Errorf("results: shard %s: %w", id, err)
	}
	trial, err := encode([]trialRecord{toTrialRecord(&s.Trial)}, shardCodec)
	if err != nil {
		return fmt.Errorf("results: shard %s: %w", id, err)
	}

	dir := ShardDir(sweepDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := removeShardFiles(dir); err != nil {
		return err
	}
	return writeFilesAtomic(dir, shardFiles, [][]byte{steps, spectra, trial},
		filepath.Dir(dir), sweepDir)
}

// removeShardFiles removes the files of an earlier shard in dir, if any,
// and syncs dir so no old file outlives a crash next to new ones.
func removeShardFiles(dir string) error {
	removed := false
	for _, name := range shardFiles {
		err := os.Remove(filepath.Join(dir, name))
		if err == nil {
			removed = true
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("results: %w", err)
		}
	}
	if !removed {
		return nil
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// ReadShard reads one trial's shard. It returns an error wrapping
// ErrIncomplete when the shard is absent or incomplete, and an error
// naming the file when a file is damaged.
func ReadShard(sweepDir, trialID string) (*Shard, error) {
	if err := checkID(trialID); err != nil {
		return nil, err
	}
	dir := ShardDir(sweepDir, trialID)
	for _, name := range shardFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrIncomplete, dir)
		}
	}
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
	var ids []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			ids = append(ids, e.Name())
		}
	}
	// Decoding dominates, so read shards on every CPU.
	read := make([]*Shard, len(ids))
	errs := make([]error, len(ids))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(ids)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(ids); i = int(next.Add(1) - 1) {
				read[i], errs[i] = ReadShard(sweepDir, ids[i])
			}
		})
	}
	wg.Wait()
	shards := make(map[string]*Shard, len(ids))
	for i, id := range ids {
		switch {
		case errors.Is(errs[i], ErrIncomplete):
		case errs[i] != nil:
			return nil, errs[i] // the first in name order, for stable messages
		default:
			shards[id] = read[i]
		}
	}
	return shards, nil
}
