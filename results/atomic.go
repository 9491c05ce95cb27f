package results

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// tempPrefix starts the name of every file being written. Readers only open
// the final names, so a temp file left by a crash is never read.
const tempPrefix = ".tmp-"

// writeFileAtomic writes data to path so that a reader sees either the old
// file, the new one, or none, never a part.
func writeFileAtomic(path string, data []byte) error {
	return writeFilesAtomic(filepath.Dir(path), []string{filepath.Base(path)}, [][]byte{data})
}

// writeFilesAtomic writes data[i] to dir/names[i], each atomically: every
// file goes to a synced temp file in dir, then all are renamed into place
// and dir (and the parents listed, whose entries lead to dir) are synced.
// When it returns nil all files are durable. The temp files are written
// and synced concurrently, and so are the directories, so the cost is
// about two sync latencies whatever the number of files.
func writeFilesAtomic(dir string, names []string, data [][]byte, parents ...string) (err error) {
	temps := make([]string, len(names))
	defer func() {
		for _, tmp := range temps {
			if tmp != "" {
				os.Remove(tmp) // fails harmlessly for those already renamed
			}
		}
		if err != nil {
			err = fmt.Errorf("results: write %s: %w", filepath.Join(dir, names[0]), err)
		}
	}()
	if err := parallel(len(names), func(i int) (err error) {
		temps[i], err = writeTemp(dir, names[i], data[i])
		return err
	}); err != nil {
		return err
	}
	for i, tmp := range temps {
		if err := os.Rename(tmp, filepath.Join(dir, names[i])); err != nil {
			return err
		}
	}
	dirs := append([]string{dir}, parents...)
	return parallel(len(dirs), func(i int) error { return syncDir(dirs[i]) })
}

// parallel runs f(0..n-1) concurrently and returns the first error.
func parallel(n int, f func(i int) error) error {
	if n == 1 {
		return f(0)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeTemp writes data to a synced temp file in dir and returns its path.
func writeTemp(dir, name string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, tempPrefix+name+"-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func isTemp(name string) bool { return strings.HasPrefix(name, tempPrefix) }

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
