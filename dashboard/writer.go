package dashboard

import (
	"encoding/json"
	"os"
	"path/filepath"

	"peftbench/results"
)

// lockState is what a sweep folder's lock file says about the run writing
// it: none, or its pid and whether that process is alive.
type lockState struct {
	pid   int
	alive bool
}

// writerState reads dir's lock file (results.LockFile). A run holds the
// file while it writes the folder and removes it when it ends; a run
// killed with -9 leaves it behind with its dead pid. The dashboard only
// reads it: taking the lock, even shared for a moment, could make a run
// starting then fail with "in use". A holder on another host (a shared
// file system) cannot be checked and counts as alive.
func writerState(dir string) lockState {
	data, err := os.ReadFile(filepath.Join(dir, results.LockFile))
	if err != nil {
		return lockState{}
	}
	var o struct {
		PID  int    `json:"pid"`
		Host string `json:"host"`
	}
	if json.Unmarshal(data, &o) != nil || o.PID <= 0 {
		return lockState{alive: true} // being written by a run starting
	}
	if host, _ := os.Hostname(); o.Host != "" && o.Host != host {
		return lockState{pid: o.PID, alive: true}
	}
	return lockState{pid: o.PID, alive: processAlive(o.PID)}
}
