package main

import (
	"os"
	"testing"
)

// TestTermFileUnwrapsUsageWatch: runMain hands commands its stderr wrapped
// in a usageWatch; the bar is drawn only if isTerminal sees the file under
// it (it did not, and bench run never drew its bar).
func TestTermFileUnwrapsUsageWatch(t *testing.T) {
	for _, w := range []any{os.Stderr, &usageWatch{w: os.Stderr}} {
		f, ok := termFile(w.(interface{ Write([]byte) (int, error) }))
		if !ok || f != os.Stderr {
			t.Errorf("termFile(%T) = %v, %v; want os.Stderr", w, f, ok)
		}
	}
}
