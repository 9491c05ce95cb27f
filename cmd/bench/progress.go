package main

import (
	"io"
	"os"
	"strconv"
	"time"

	"peftbench/runner"
)

// progressBar returns a progress bar on the terminal w, redrawn every
// second, cut to the terminal's width; the caller writes every other line
// of the run through it (Options.Log, the cache's Log) and closes it.
func progressBar(w io.Writer) *runner.Bar {
	b := runner.NewBar(w)
	b.Width = termWidth(w)
	b.Tick(time.Second)
	return b
}

// termWidth is the width of the terminal w in columns: its window size,
// else $COLUMNS, else 80.
func termWidth(w io.Writer) int {
	if f, ok := termFile(w); ok {
		if n := windowCols(f); n > 0 {
			return n
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}

// pausing wraps an Options.Interrupted so that its prompt owns the
// terminal line: the bar is cleared while it asks.
func pausing(b *runner.Bar, ask func(string) bool) func(string) bool {
	return func(work string) bool {
		b.Pause()
		defer b.Resume()
		return ask(work)
	}
}

// termFile is the file under w: w itself, or the stderr that runMain's
// usageWatch wraps (without this, bench never drew its bar).
func termFile(w io.Writer) (*os.File, bool) {
	if u, ok := w.(*usageWatch); ok {
		w = u.w
	}
	f, ok := w.(*os.File)
	return f, ok
}
