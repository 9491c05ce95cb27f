package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// LockFile, in a sweep folder, is held by the run writing it: one line of
// JSON naming the holder's pid, host and start time.
const LockFile = ".lock"

// Lock is a held lock on a sweep folder; see LockSweep.
type Lock struct {
	path    string
	release func() error
}

// lockOwner is the content of a lock file.
type lockOwner struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
}

// LockedError is LockSweep's error when another run holds the folder.
type LockedError struct {
	Dir   string
	PID   int    // 0 when the holder had not written its pid yet
	Host  string // the holder's host
	Since time.Time
}

func (e *LockedError) Error() string {
	who := "another run"
	if e.PID > 0 {
		who = fmt.Sprintf("another run (pid %d on %s, since %s)", e.PID, e.Host, e.Since.Local().Format(time.DateTime))
	}
	return fmt.Sprintf("results: %s is in use by %s; wait for it to end or stop it, then rerun", e.Dir, who)
}

// LockSweep takes the lock of the sweep folder dir, creating the folder if
// needed, so that no two runs write one folder. It fails with a
// *LockedError naming the holder's pid when another live process holds it.
// A lock left by a process that died is taken over: on Unix the lock is an
// flock, which the kernel releases when its holder dies; elsewhere the file
// is taken over when its pid is not a live process on this host. Release
// the lock with Unlock.
func LockSweep(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	host, _ := os.Hostname()
	owner, err := json.Marshal(lockOwner{PID: os.Getpid(), Host: host, Started: time.Now().UTC()})
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	release, err := lockPath(path, append(owner, '\n'))
	if err != nil {
		var le *LockedError
		if errors.As(err, &le) {
			le.Dir = dir
			return nil, le
		}
		return nil, fmt.Errorf("results: lock %s: %w", dir, err)
	}
	return &Lock{path: path, release: release}, nil
}

// Unlock releases the lock and removes the lock file. It may be called
// more than once.
func (l *Lock) Unlock() error {
	if l == nil || l.release == nil {
		return nil
	}
	err := l.release()
	l.release = nil
	if err != nil {
		return fmt.Errorf("results: unlock %s: %w", filepath.Dir(l.path), err)
	}
	return nil
}

// readOwner reads the holder named in the lock file at path; a lock file
// being written reads as pid 0.
func readOwner(path string) *LockedError {
	var o lockOwner
	for range 20 {
		data, err := os.ReadFile(path)
		if err == nil && json.Unmarshal(data, &o) == nil && o.PID > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond) // the holder locked but has not written yet
	}
	return &LockedError{PID: o.PID, Host: o.Host, Since: o.Started}
}
