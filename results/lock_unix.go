//go:build unix

package results

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockPath takes an exclusive flock on path without waiting and writes
// owner into it. The kernel drops the flock when the process dies, so a
// lock file left by a killed run is simply locked again.
func lockPath(path string, owner []byte) (func() error, error) {
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, readOwner(path)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		// The holder we waited on may have removed the file before we
		// locked it: a lock on an unlinked file locks nothing.
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) != nil || unix.Stat(path, &now) != nil || held.Ino != now.Ino || held.Dev != now.Dev {
			f.Close()
			continue
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, err
		}
		if _, err := f.WriteAt(owner, 0); err != nil {
			f.Close()
			return nil, err
		}
		return func() error {
			err := os.Remove(path) // while still locked, so no one locks a doomed file for long
			f.Close()              // releases the flock
			return err
		}, nil
	}
	return nil, errors.New("lock file keeps being replaced")
}
