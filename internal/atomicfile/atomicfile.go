// Package atomicfile writes files so that a reader sees the old file, the
// new one, or none, never a part: the data goes to a synced temporary file
// in the same folder, which is then renamed over the final name.
//
// Every temporary file is named TempPrefix + the final name + "-" +
// os.CreateTemp's random digits, so that readers, which open final names
// only, never read one, and a sweep can remove those a crash left behind.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// TempPrefix starts the name of every file being written.
const TempPrefix = ".tmp-"

// IsTemp reports whether name (a base name) is a temporary file's.
func IsTemp(name string) bool { return strings.HasPrefix(name, TempPrefix) }

// WriteFile writes data to path atomically, mode 0644.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFileMode is WriteFile with another mode (0755 for a script or a
// program).
func WriteFileMode(path string, data []byte, mode os.FileMode) error {
	return write(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write writes path atomically, mode 0644, with what write writes to the
// temporary file. An error of write or of the file system leaves path as
// it was and no temporary file.
func Write(path string, w func(io.Writer) error) error { return write(path, 0o644, w) }

func write(path string, mode os.FileMode, write func(io.Writer) error) error {
	tmp, err := writeTemp(filepath.Dir(path), filepath.Base(path), mode, write)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// WriteFiles writes data[i] to dir/names[i], each atomically: every file
// goes to a synced temporary file in dir, then all are renamed into place
// and dir (and the parents listed, whose entries lead to dir) are synced.
// When it returns nil all files are durable. The temporary files are
// written and synced concurrently, and so are the folders, so the cost is
// about two sync latencies whatever the number of files.
func WriteFiles(dir string, names []string, data [][]byte, parents ...string) error {
	temps := make([]string, len(names))
	defer func() {
		for _, tmp := range temps {
			if tmp != "" {
				os.Remove(tmp) // fails harmlessly for those already renamed
			}
		}
	}()
	if err := Parallel(len(names), func(i int) (err error) {
		temps[i], err = writeTemp(dir, names[i], 0o644, func(w io.Writer) error {
			_, err := w.Write(data[i])
			return err
		})
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
	return Parallel(len(dirs), func(i int) error { return SyncDir(dirs[i]) })
}

// Parallel runs f(0..n-1) concurrently and returns their errors joined.
func Parallel(n int, f func(i int) error) error {
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

// writeTemp writes a synced temporary file for name in dir with mode and
// returns its path.
func writeTemp(dir, name string, mode os.FileMode, write func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(dir, TempPrefix+name+"-*")
	if err != nil {
		return "", err
	}
	err = write(f)
	if err == nil {
		err = f.Chmod(mode)
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

// SyncDir syncs the folder dir, so that the entries renamed into it are
// durable.
func SyncDir(dir string) error {
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
