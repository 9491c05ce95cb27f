// Package browsertest is the one home of the browser tests' Chromium:
// finding it (or skipping the test), running it headless once, and reading
// console messages out of its log. The report's, the dashboard's and
// bench serve's browser tests use it; .ci/run installs Debian's chromium.
package browsertest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Chromium returns the browser to test with: $PEFTBENCH_CHROMIUM, else
// chromium or chromium-browser on PATH. It skips the test under -short or
// without one, saying what the test (what) would have checked.
func Chromium(t testing.TB, what string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s: browser test skipped in -short mode", what)
	}
	if p := os.Getenv("PEFTBENCH_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skipf("%s: no chromium on PATH (apt-get install chromium, or set PEFTBENCH_CHROMIUM): skipping the browser test", what)
	return ""
}

// Flags are the headless flags every run uses: no network beyond the page,
// no first-run or sync work, console messages logged to stderr.
var Flags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-dev-shm-usage", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"}

// Run runs headless Chromium once, bounded by a minute, with a fresh
// profile, and returns its stdout (--dump-dom's DOM) and stderr (its log,
// console messages included).
func Run(t testing.TB, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all := append(append([]string{}, Flags...), "--user-data-dir="+t.TempDir())
	cmd := exec.CommandContext(ctx, bin, append(all, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, errb.String())
	}
	return out.String(), errb.String()
}

// ConsoleErrors picks the console messages out of Chromium's log, lines
// such as `INFO:CONSOLE:1] "Uncaught ReferenceError: …", source: file:///…`.
// Chromium logs console.error at the same level as console.log, and the
// pages under test write nothing to the console, so every message counts.
func ConsoleErrors(log string) []string {
	var errs []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, ":CONSOLE") {
			errs = append(errs, line)
		}
	}
	return errs
}
