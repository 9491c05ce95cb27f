package results

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// TablesStale reports whether sweepDir's compacted tables are behind its
// shards: a run killed after some trials ended but before it compacted
// leaves shards the tables lack. It returns "" when the tables hold
// exactly the shards there are, else what differs, e.g. "2 new shards,
// 1 rewritten shard since trials.parquet was compacted". The shards are
// compared by their digests in the tables' checksums.json; tables written
// before that existed are compared by modification time.
func TablesStale(sweepDir string) (string, error) {
	c, _, err := readChecksums(sweepDir)
	if err != nil {
		return "", err
	}
	ids, err := shardIDs(sweepDir)
	if err != nil {
		return "", err
	}
	if c == nil {
		return staleByTime(sweepDir, ids)
	}
	var added, changed, removed int
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		digest, err := shardDigest(ShardDir(sweepDir, id))
		switch {
		case errors.Is(err, ErrIncomplete):
			continue
		case err != nil:
			return "", damaged(id, ShardDir(sweepDir, id), err)
		}
		seen[id] = true
		want, ok := c.Shards[id]
		switch {
		case !ok:
			added++
		case want != digest:
			changed++
		}
	}
	for id := range c.Shards {
		if !seen[id] {
			removed++
		}
	}
	var parts []string
	if added > 0 {
		parts = append(parts, fmt.Sprintf("%d new %s", added, plural(added, "shard", "shards")))
	}
	if changed > 0 {
		parts = append(parts, fmt.Sprintf("%d rewritten %s", changed, plural(changed, "shard", "shards")))
	}
	if removed > 0 {
		parts = append(parts, fmt.Sprintf("%d removed %s", removed, plural(removed, "shard", "shards")))
	}
	if len(parts) == 0 {
		return "", nil
	}
	return strings.Join(parts, ", ") + " since " + TrialsFile + " was compacted", nil
}

// staleByTime compares the shards' trial.parquet with trials.parquet by
// modification time, for tables without checksums.
func staleByTime(sweepDir string, ids []string) (string, error) {
	table, err := os.Stat(filepath.Join(sweepDir, TrialsFile))
	if err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	newer := 0
	for _, id := range ids {
		fi, err := os.Stat(filepath.Join(ShardDir(sweepDir, id), shardTrialFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("results: %w", err)
		}
		if fi.ModTime().After(table.ModTime()) {
			newer++
		}
	}
	if newer == 0 {
		return "", nil
	}
	return fmt.Sprintf("%d %s written after %s", newer, plural(newer, "shard", "shards"), TrialsFile), nil
}

// shardDigest is readShardFiles's digest of the shard in dir, read without
// its Parquet files when it has a checksums.json.
func shardDigest(dir string) (string, error) {
	for _, name := range shardFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: %s", ErrIncomplete, dir)
		}
	}
	_, cdata, err := readChecksums(dir)
	if err != nil {
		return "", err
	}
	if cdata != nil {
		return sum(cdata), nil
	}
	_, digest, err := readShardFiles(dir)
	return digest, err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ReadFinished reads the finished trials of the results folder dir, in
// plan order, and with steps their step rows: from the compacted tables
// when they hold exactly the shards there are, else from the shards, with
// a note saying why. A folder with neither is an error naming it. It is
// the one reading of a folder that the exports (bench export-table,
// bench export-tracker) share.
func ReadFinished(dir string, steps bool) (trials []TrialRow, stepRows []StepRow, note string, err error) {
	path := filepath.Join(dir, TrialsFile)
	_, err = os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		note = "no " + TrialsFile + ": read the trial shards"
	case err != nil:
		return nil, nil, "", err
	default:
		stale, err := TablesStale(dir)
		if err != nil {
			return nil, nil, "", err
		}
		if stale == "" {
			if trials, err = ReadTrials(path); err != nil {
				return nil, nil, "", err
			}
			if steps {
				if stepRows, err = ReadSteps(filepath.Join(dir, StepsFile)); err != nil {
					return nil, nil, "", err
				}
			}
			return trials, stepRows, "", nil
		}
		note = TrialsFile + " is stale (" + stale + "): read the trial shards"
	}
	shards, err := ReadShards(dir)
	if err != nil {
		return nil, nil, "", err
	}
	if len(shards) == 0 {
		return nil, nil, "", fmt.Errorf("%s: no %s and no trial shards: not a results folder", dir, TrialsFile)
	}
	for _, s := range shards {
		trials = append(trials, s.Trial)
	}
	slices.SortFunc(trials, func(a, b TrialRow) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.TrialID, b.TrialID))
	})
	if steps {
		for _, t := range trials {
			stepRows = append(stepRows, shards[t.TrialID].Steps...)
		}
	}
	return trials, stepRows, note, nil
}
