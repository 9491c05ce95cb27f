package plots

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// copyFixture copies the committed fixture into a temporary results folder.
func copyFixture(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	ents, err := os.ReadDir(fixtureDir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(fixtureDir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// BenchmarkLoadFigures measures reading the fixture and building (not
// rendering) every figure: statistics and fits.
func BenchmarkLoadFigures(b *testing.B) {
	for b.Loop() {
		d, err := Load(fixtureDir)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := Figures(d, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlotReport is `bench plot` (all formats) plus `bench report` on
// the fixture: 114 trials, 2 tasks, 17 figures. The goal is well under 10 s
// for a quick sweep's results.
func BenchmarkPlotReport(b *testing.B) {
	dir := copyFixture(b)
	cpu0 := cpuSeconds()
	for b.Loop() {
		if _, err := Write(dir, Options{}); err != nil {
			b.Fatal(err)
		}
		if _, err := WriteReport(dir); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time is the stable measure on a shared machine: wall time is at
	// least cpu-s/op divided by the cores.
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
}

// cpuSeconds is the process's user plus system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
