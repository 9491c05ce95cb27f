//go:build !unix

package results

import (
	"errors"
	"io/fs"
	"os"
)

// lockPath creates path exclusively and writes owner into it. An existing
// lock file whose holder is not a live process on this host is stale and
// taken over.
func lockPath(path string, owner []byte) (func() error, error) {
	host, _ := os.Hostname()
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			le := readOwner(path)
			if le.PID > 0 && le.Host == host && !alive(le.PID) {
				os.Remove(path) // stale: its holder died
				continue
			}
			return nil, le
		}
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(owner); err != nil {
			f.Close()
			os.Remove(path)
			return nil, err
		}
		f.Close()
		return func() error { return os.Remove(path) }, nil
	}
	return nil, errors.New("lock file keeps being replaced")
}

// alive reports whether pid is a running process, as far as the platform
// tells.
func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
