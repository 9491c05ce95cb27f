package results_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"peftbench/results"
)

// The fuzz targets of the results readers write fuzzed bytes where a
// reader expects a table, a shard file or the manifest, and check that the
// reader returns (no panic, nothing running past 10 s) having allocated a
// bounded amount. Seeds: testdata/fuzz/<target> and the files of a small
// sweep written by this package.

// fuzzSweep writes a compacted two-trial sweep with a manifest under a
// temporary folder and returns the sweep's folder.
func fuzzSweep(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "fuzz")
	for i, id := range []string{"t0", "t1"} {
		row := results.TrialRow{Sweep: "fuzz", TrialID: id, Index: int64(i), Task: "teacher-shift",
			Method: "lora", Rank: 4, Seed: int64(i), Status: results.StatusOK, Config: `{"seed":1}`}
		row.ClearMetrics()
		row.TargetLoss, row.Forgetting = 0.5+float64(i), 0.01
		s := &results.Shard{Trial: row}
		for step := int64(1); step <= 3; step++ {
			s.Steps = append(s.Steps, results.StepRow{TrialID: id, Step: step, Split: "train", Metric: "loss", Value: 1 / float64(step)})
		}
		s.Spectra = []results.SpectrumRow{{TrialID: id, Layer: "fc1", Index: 0, SigmaBase: 2, SigmaTuned: 2.5, MaxCos: 0.4, Intruder: []bool{true, false}}}
		if err := results.WriteShard(dir, s); err != nil {
			tb.Fatal(err)
		}
	}
	if err := results.Compact(dir); err != nil {
		tb.Fatal(err)
	}
	m := &results.Manifest{Sweep: "fuzz", SweepFile: "fuzz.toml", SweepSource: "name = \"fuzz\"\n", SourceHash: "h",
		Trials: []byte(`[{"id":"t0"},{"id":"t1"}]`), Started: time.Unix(0, 0).UTC()}
	if err := results.WriteManifest(dir, m); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// addFiles adds the named files of dir as seeds.
func addFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// bounded runs read, failing t if it runs past 10 s or allocates more than
// 64 MiB plus 1024 bytes per input byte (compression may expand a page).
func bounded(t *testing.T, name string, input int, read func() error) error {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan error, 1)
	go func() { done <- read() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s ran for more than 10s on %d bytes", name, input)
	}
	runtime.ReadMemStats(&after)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(64<<20+1024*input); got > limit {
		t.Fatalf("%s of %d bytes allocated %d bytes (limit %d)", name, input, got, limit)
	}
	return err
}

// FuzzReadTables: ReadTrials, ReadSteps and ReadSpectra (and the Arrow
// reader) on one fuzzed Parquet file.
func FuzzReadTables(f *testing.F) {
	dir := fuzzSweep(f)
	addFiles(f, filepath.Join(dir, results.TrialsFile), filepath.Join(dir, results.StepsFile), filepath.Join(dir, results.SpectraFile))
	// The fuzzer's first finds: parquet-go allocated the footer length the
	// last 8 bytes declare (800 MB for "PAR1PAR1", 4 GiB for a footer
	// length of 0xfffffff0).
	f.Add([]byte("PAR1PAR1"))
	if steps, err := os.ReadFile(filepath.Join(dir, results.StepsFile)); err == nil && len(steps) > 8 {
		binary.LittleEndian.PutUint32(steps[len(steps)-8:], 0xfffffff0)
		f.Add(steps)
	}
	path := filepath.Join(f.TempDir(), "table.parquet")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		bounded(t, "ReadTrials", len(data), func() error { _, err := results.ReadTrials(path); return err })
		bounded(t, "ReadSteps", len(data), func() error { _, err := results.ReadSteps(path); return err })
		bounded(t, "ReadSpectra", len(data), func() error { _, err := results.ReadSpectra(path); return err })
		bounded(t, "ReadArrow", len(data), func() error {
			tab, err := results.ReadArrow(path)
			if err == nil {
				tab.Release()
			}
			return err
		})
	})
}

// FuzzReadManifest: ReadManifest on a fuzzed manifest.json.
func FuzzReadManifest(f *testing.F) {
	dir := fuzzSweep(f)
	addFiles(f, filepath.Join(dir, results.ManifestFile))
	sweep := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(sweep, results.ManifestFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		bounded(t, "ReadManifest", len(data), func() error { _, err := results.ReadManifest(sweep); return err })
	})
}

// shardFiles are a shard's files, as WriteShard leaves them in
// trials/<id>/; FuzzReadShard replaces one of them.
var shardFiles = []string{results.StepsFile, results.SpectraFile, "trial.parquet"}

// FuzzReadShard: ReadShard and ReadShards on a sweep one of whose shard
// files (which, modulo 3: steps, spectra, trial row) holds fuzzed bytes.
func FuzzReadShard(f *testing.F) {
	dir := fuzzSweep(f)
	for i, name := range shardFiles {
		b, err := os.ReadFile(filepath.Join(dir, results.TrialsDir, "t0", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	n := 0
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		n++
		sweep := filepath.Join(t.TempDir(), fmt.Sprint("fuzz", n))
		if err := os.CopyFS(sweep, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		name := shardFiles[int(which)%len(shardFiles)]
		if err := os.WriteFile(filepath.Join(sweep, results.TrialsDir, "t0", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		bounded(t, "ReadShard", len(data), func() error { _, err := results.ReadShard(sweep, "t0"); return err })
		bounded(t, "ReadShards", len(data), func() error { _, err := results.ReadShards(sweep); return err })
	})
}
