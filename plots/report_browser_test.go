package plots

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium finds a Chromium binary: $PEFTBENCH_CHROMIUM, else chromium or
// chromium-browser on PATH (.ci/run installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PEFTBENCH_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("plots: no chromium on PATH (apt-get install chromium, or set PEFTBENCH_CHROMIUM): skipping the browser test of report.html")
	return ""
}

// TestReportInBrowser opens report.html in headless Chromium and checks
// that every figure loaded (an inline script writes the count of loaded
// images into body[data-figures]) and that the console logged no error,
// then saves a screenshot next to the report.
func TestReportInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("plots: browser test skipped in -short mode")
	}
	bin := chromium(t)
	dir := copyFixture(t)
	path, err := WriteReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	figs, _, err := Figures(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := "file://" + path

	// 1. The DOM after the load event: every image decoded, no script error.
	dom, logs := runChromium(t, bin, "--dump-dom", url)
	m := regexp.MustCompile(`data-figures="([^"]*)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no data-figures attribute in the dumped DOM; stderr:\n%s", logs)
	}
	want := fmt.Sprintf("%d/%d", len(figs), len(figs))
	if m[1] != want {
		t.Errorf("figures loaded: %q, want %q (every image complete with a natural width, no script error)", m[1], want)
	}
	if errs := consoleErrors(logs); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}

	// 2. A screenshot, kept for people to look at.
	shot := filepath.Join(dir, "report.png")
	_, logs = runChromium(t, bin, "--screenshot="+shot, "--window-size=1200,3000", url)
	info, err := os.Stat(shot)
	if err != nil || info.Size() < 10_000 {
		t.Fatalf("no screenshot (%v); stderr:\n%s", err, logs)
	}
	if out := os.Getenv("PEFTBENCH_SCREENSHOT"); out != "" {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	t.Logf("screenshot: %s (%d bytes)", shot, info.Size())
}

// runChromium runs headless Chromium once and returns its stdout and
// stderr (console messages are logged to stderr).
func runChromium(t *testing.T, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, errb.String())
	}
	return out.String(), errb.String()
}

// consoleErrors picks the console messages out of Chromium's log, lines
// such as `INFO:CONSOLE:1] "Uncaught ReferenceError: …", source: file:///…`.
// Chromium logs console.error at the same level as console.log, and the
// report writes nothing to the console, so every message counts.
func consoleErrors(log string) []string {
	var errs []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, ":CONSOLE") {
			errs = append(errs, line)
		}
	}
	return errs
}

func TestConsoleErrors(t *testing.T) {
	for _, tc := range []struct {
		log  string
		want int
	}{
		{"", 0},
		{"[1:1:1127/143913.7:INFO:CONSOLE:1] \"boom\", source: file:///a.html (1)", 1},
		{"[1:1:1127/143913.7:INFO:CONSOLE(12)] \"Uncaught ReferenceError: f is not defined\", source: x (12)\nother", 1},
		{"[1:1:1127/143913.7:WARNING:gpu_init.cc(1)] GPU disabled\n[1:1:1127:INFO:CONSOLE:3] \"a\"\n[1:1:1127:INFO:CONSOLE:4] \"b\"", 2},
	} {
		if got := consoleErrors(tc.log); len(got) != tc.want {
			t.Errorf("consoleErrors(%q) = %q, want %d lines", tc.log, got, tc.want)
		}
	}
}
