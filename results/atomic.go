package results

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"peftbench/internal/atomicfile"
)

// tempPrefix starts the name of every file being written. Readers only open
// the final names, so a temp file left by a crash is never read.
const tempPrefix = atomicfile.TempPrefix

// writeFileAtomic writes data to path so that a reader sees either the old
// file, the new one, or none, never a part.
func writeFileAtomic(path string, data []byte) error {
	return writeFilesAtomic(filepath.Dir(path), []string{filepath.Base(path)}, [][]byte{data})
}

// writeFilesAtomic writes data[i] to dir/names[i], each atomically, and
// syncs dir and the parents listed (atomicfile.WriteFiles).
func writeFilesAtomic(dir string, names []string, data [][]byte, parents ...string) error {
	if err := atomicfile.WriteFiles(dir, names, data, parents...); err != nil {
		return fmt.Errorf("results: write %s: %w", filepath.Join(dir, names[0]), err)
	}
	return nil
}

// parallel runs f(0..n-1) concurrently and returns the first error.
func parallel(n int, f func(i int) error) error { return atomicfile.Parallel(n, f) }

func syncDir(dir string) error { return atomicfile.SyncDir(dir) }

func isTemp(name string) bool { return atomicfile.IsTemp(name) }

// tempNames are the files the atomic writer writes in a sweep folder and
// its shard folders; a temp file of one is named
// tempPrefix + name + "-" + os.CreateTemp's random digits.
var tempNames = []string{TrialsFile, StepsFile, SpectraFile, ManifestFile, ChecksumsFile, shardTrialFile}

// isWriterTemp reports whether name is a temp file of the atomic writer.
func isWriterTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok {
		return false
	}
	for _, n := range tempNames {
		if digits, ok := strings.CutPrefix(rest, n+"-"); ok && digits != "" && strings.Trim(digits, "0123456789") == "" {
			return true
		}
	}
	return false
}

// RemoveTemps removes the temp files a crashed writer left in sweepDir and
// in its shard folders, and returns their paths. Only regular files named
// as this package's atomic writer names them are removed; call it while
// holding the folder's lock (LockSweep), so that no writer is running.
func RemoveTemps(sweepDir string) ([]string, error) {
	dirs := []string{sweepDir}
	ids, err := shardIDs(sweepDir)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		dirs = append(dirs, ShardDir(sweepDir, id))
	}
	var removed []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("results: %w", err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || !isWriterTemp(e.Name()) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("results: %w", err)
			}
			removed = append(removed, path)
		}
	}
	return removed, nil
}
