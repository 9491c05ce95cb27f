package train

import "syscall"

// peakRSS is the process's peak resident set size in bytes (getrusage
// ru_maxrss). It covers the whole process: with several trials running at
// once it bounds each one's peak from above.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}
