package results

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corruptionSweep writes a small compacted sweep (three trials, one
// failed, one without spectra) with its manifest, and returns its folder.
func corruptionSweep(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "quick")
	writeSweep(t, dir, []int{0, 1, 2})
	s := sampleShard("t06", 3, true)
	s.Trial.Status, s.Trial.Error = StatusFailed, "boom"
	if err := WriteShard(dir, s); err != nil {
		t.Fatal(err)
	}
	if err := Compact(dir); err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Sweep: "quick", Description: "corruption", SweepFile: "quick.toml",
		SweepSource: "name = \"quick\"\nlr = 1e-3\n", SourceHash: "sha256:0123",
		Trials: []byte(`[{"id":"t09","lr":0.001},{"id":"t08","lr":0.002}]`), Host: "box"}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readBack reads dir through every public read path and returns, per
// path, either the values read (formatted exactly: %#v keeps NaN, -0 and
// every float bit) or the error.
func readBack(dir string) map[string]result {
	out := map[string]result{}
	add := func(name string, v any, err error) { out[name] = result{fmt.Sprintf("%#v", v), err} }
	m, err := ReadManifest(dir)
	if m == nil {
		m = new(Manifest)
	}
	add("ReadManifest", *m, err)
	shards, err := ReadShards(dir)
	var all []Shard
	for _, id := range []string{"t06", "t07", "t08", "t09"} {
		if s := shards[id]; s != nil {
			all = append(all, *s)
		}
	}
	add("ReadShards", fmt.Sprint(len(shards), all), err)
	for _, id := range []string{"t09", "t08", "t07", "t06"} {
		s, err := ReadShard(dir, id)
		if s == nil {
			s = new(Shard)
		}
		add("ReadShard "+id, *s, err)
	}
	tr, err := ReadTrials(filepath.Join(dir, TrialsFile))
	add("ReadTrials", tr, err)
	st, err := ReadSteps(filepath.Join(dir, StepsFile))
	add("ReadSteps", st, err)
	sp, err := ReadSpectra(filepath.Join(dir, SpectraFile))
	add("ReadSpectra", sp, err)
	stale, err := TablesStale(dir)
	add("TablesStale", stale, err)
	return out
}

type result struct {
	value string
	err   error
}

// TestSingleByteCorruption flips single bits (one at a time, each on a
// fresh copy of the folder) at positions spread over one shard's files,
// trials.parquet, manifest.json and the other files of the sweep folder,
// and reads the folder back through every public read path: each read
// must return an error naming the damaged file, or exactly the original
// values — never other values silently.
func TestSingleByteCorruption(t *testing.T) {
	orig := corruptionSweep(t)
	want := readBack(orig)
	for name, r := range want {
		if r.err != nil {
			t.Fatalf("%s of the intact folder: %v", name, r.err)
		}
	}
	shard := ShardDir(orig, "t08")
	targets := []struct {
		path  string
		flips int
	}{
		{filepath.Join(shard, shardTrialFile), 60},
		{filepath.Join(shard, StepsFile), 40},
		{filepath.Join(shard, SpectraFile), 40},
		{filepath.Join(shard, ChecksumsFile), 20},
		{filepath.Join(orig, TrialsFile), 90},
		{filepath.Join(orig, ManifestFile), 60},
		{filepath.Join(orig, StepsFile), 15},
		{filepath.Join(orig, SpectraFile), 15},
		{filepath.Join(orig, ChecksumsFile), 15},
	}
	rng := rand.New(rand.NewPCG(23, 8))
	var tried, errored, identical, silent int
	for _, tg := range targets {
		data, err := os.ReadFile(tg.path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(orig, tg.path)
		for i := range tg.flips {
			// Spread evenly over the file, jittered within each stretch,
			// with the first and last bytes always among them.
			off := i * len(data) / tg.flips
			if i > 0 && i < tg.flips-1 {
				off += rng.IntN(max(1, len(data)/tg.flips))
			} else if i == tg.flips-1 {
				off = len(data) - 1
			}
			bit := byte(1) << rng.IntN(8)
			dir := filepath.Join(t.TempDir(), "quick")
			copyTree(t, orig, dir)
			path := filepath.Join(dir, rel)
			flipped := append([]byte(nil), data...)
			flipped[off] ^= bit
			if err := os.WriteFile(path, flipped, 0o644); err != nil {
				t.Fatal(err)
			}
			tried++
			anyErr, anySilent := false, false
			for name, got := range readBack(dir) {
				switch {
				case got.err != nil:
					anyErr = true
					if !strings.Contains(got.err.Error(), path) {
						t.Errorf("%s, byte %d ^ %#02x: %s: error does not name the file: %v", rel, off, bit, name, got.err)
					}
				case got.value != want[name].value:
					anySilent = true
					t.Errorf("%s, byte %d ^ %#02x: %s silently read other values:\n got %s\nwant %s", rel, off, bit, name, got.value, want[name].value)
				}
			}
			switch {
			case anySilent:
				silent++
			case anyErr:
				errored++
			default:
				identical++
				t.Logf("%s, byte %d (%q) ^ %#02x: every read gave the original values", rel, off, data[off], bit)
			}
		}
	}
	t.Logf("%d single-bit flips: %d gave an error naming the file, %d read the original values, %d read other values silently",
		tried, errored, identical, silent)
	if tried < 300 {
		t.Errorf("only %d flips tried, want ≥ 300", tried)
	}
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
