package results

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

	sums := encodeChecksums(&checksums{Files: map[string]string{
		StepsFile: sum(steps), SpectraFile: sum(spectra), shardTrialFile: sum(trial),
	}})

	dir := ShardDir(sweepDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := removeShardFiles(dir); err != nil {
		return err
	}
	// trial.parquet is renamed last: it makes the shard complete, with its
	// checksums already in place.
	return writeFilesAtomic(dir, []string{StepsFile, SpectraFile, ChecksumsFile, shardTrialFile},
		[][]byte{steps, spectra, sums, trial}, filepath.Dir(dir), sweepDir)
}

// removeShardFiles removes the files of an earlier shard in dir, if any,
// and syncs dir so no old file outlives a crash next to new ones.
func removeShardFiles(dir string) error {
	removed := false
	for _, name := range append(shardFiles[:len(shardFiles):len(shardFiles)], ChecksumsFile) {
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

// ReadShard reads one trial's shard, each file checked against the
// shard's checksums.json. It returns an error wrapping ErrIncomplete when
// the shard is absent or incomplete, and an error wrapping ErrDamaged that
// names the file and the remedy when a file is damaged.
func ReadShard(sweepDir, trialID string) (*Shard, error) {
	s, _, err := readShard(sweepDir, trialID)
	return s, err
}

// readShard reads one shard and returns its digest: the SHA-256 of its
// checksums.json, or for a shard written without one, of its files' sums.
func readShard(sweepDir, trialID string) (*Shard, string, error) {
	if err := checkID(trialID); err != nil {
		return nil, "", err
	}
	dir := ShardDir(sweepDir, trialID)
	data, digest, err := readShardFiles(dir)
	if err != nil {
		return nil, "", damaged(trialID, dir, err)
	}
	trialPath := filepath.Join(dir, shardTrialFile)
	trials, err := decodeTrials(trialPath, data[shardTrialFile])
	if err != nil {
		return nil, "", damaged(trialID, dir, err)
	}
	if len(trials) != 1 || trials[0].TrialID != trialID {
		return nil, "", damaged(trialID, dir, fmt.Errorf("results: %s is %w: want one row for trial %s, have %d", trialPath, ErrDamaged, trialID, len(trials)))
	}
	s := &Shard{Trial: trials[0]}
	steps, err := decodeTable[stepRecord](filepath.Join(dir, StepsFile), data[StepsFile])
	if err != nil {
		return nil, "", damaged(trialID, dir, err)
	}
	s.Steps = fromStepRecords(steps)
	spectra, err := decodeTable[spectrumRecord](filepath.Join(dir, SpectraFile), data[SpectraFile])
	if err != nil {
		return nil, "", damaged(trialID, dir, err)
	}
	s.Spectra = fromSpectrumRecords(spectra)
	return s, digest, nil
}

// readShardFiles reads the files of the shard in dir, checked against its
// checksums.json, and returns them by name with the shard's digest.
func readShardFiles(dir string) (map[string][]byte, string, error) {
	for _, name := range shardFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("%w: %s", ErrIncomplete, dir)
		}
	}
	c, cdata, err := readChecksums(dir)
	if err != nil {
		return nil, "", err
	}
	data := make(map[string][]byte, len(shardFiles))
	var legacy []byte
	for _, name := range shardFiles {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("%w: %s", ErrIncomplete, dir) // rewritten meanwhile
		}
		if err != nil {
			return nil, "", fmt.Errorf("results: %w", err)
		}
		if err := c.verify(path, b); err != nil {
			return nil, "", err
		}
		data[name] = b
		legacy = append(legacy, sum(b)...)
	}
	if cdata != nil {
		return data, sum(cdata), nil
	}
	return data, sum(legacy), nil
}

// damaged adds the trial and the remedy to an error about a shard's file.
// Incomplete shards and errors that are not about the bytes (permissions)
// pass unchanged.
func damaged(trialID, dir string, err error) error {
	if !errors.Is(err, ErrDamaged) {
		return err
	}
	return fmt.Errorf("%w; trial %s: delete %s to rerun that trial (its shard is not used until then)", err, trialID, dir)
}

// ReadShards reads every complete shard under sweepDir/trials, keyed by
// trial ID. Incomplete shards (a crash before trial.parquet was renamed
// into place) and temp files are skipped; a damaged file is an error
// naming it. A sweep folder without trials gives an empty map.
func ReadShards(sweepDir string) (map[string]*Shard, error) {
	shards, _, bad, err := readShards(sweepDir)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, bad[slices.Min(slices.Collect(maps.Keys(bad)))] // the first in name order, for stable messages
	}
	return shards, nil
}

// ScanShards is ReadShards for a status report: it reads every complete
// shard and returns the damaged ones apart, keyed by trial ID, each error
// naming the file and the remedy, instead of failing on the first.
func ScanShards(sweepDir string) (shards map[string]*Shard, damaged map[string]error, err error) {
	shards, _, damaged, err = readShards(sweepDir)
	return shards, damaged, err
}

// readShards reads every complete shard and its digest; unreadable shards
// are returned apart.
func readShards(sweepDir string) (shards map[string]*Shard, digests map[string]string, bad map[string]error, err error) {
	ids, err := shardIDs(sweepDir)
	if err != nil {
		return nil, nil, nil, err
	}
	// Decoding dominates, so read shards on every CPU.
	read := make([]*Shard, len(ids))
	dig := make([]string, len(ids))
	errs := make([]error, len(ids))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(ids)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(ids); i = int(next.Add(1) - 1) {
				read[i], dig[i], errs[i] = readShard(sweepDir, ids[i])
			}
		})
	}
	wg.Wait()
	shards = make(map[string]*Shard, len(ids))
	digests = make(map[string]string, len(ids))
	bad = map[string]error{}
	for i, id := range ids {
		switch {
		case errors.Is(errs[i], ErrIncomplete):
		case errs[i] != nil:
			bad[id] = errs[i]
		default:
			shards[id], digests[id] = read[i], dig[i]
		}
	}
	return shards, digests, bad, nil
}

// shardIDs lists the folders under sweepDir/trials that may hold a shard,
// in name order.
func shardIDs(sweepDir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(sweepDir, TrialsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
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
	return ids, nil
}
