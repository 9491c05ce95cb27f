//go:build !unix

package dashboard

import "os"

// processAlive reports whether pid is a process, as far as the platform
// tells.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
