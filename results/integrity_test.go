package results

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// flipByte flips the low bit of the byte at off of the file at path.
func flipByte(t testing.TB, path string, off int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedShardRemedy: a damaged shard's error names the file and says
// what to do; ScanShards still returns the other trials; resume-style
// reads do not drop it silently.
func TestDamagedShardRemedy(t *testing.T) {
	dir := t.TempDir()
	writeSweep(t, dir, []int{0, 1, 2})
	bad := ShardDir(dir, "t08") // plan index 1
	path := filepath.Join(bad, StepsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, path, len(data)/2)

	_, err = ReadShards(dir)
	if err == nil || !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) ||
		!strings.Contains(err.Error(), "delete "+bad+" to rerun that trial") {
		t.Fatalf("ReadShards error = %v; want ErrDamaged naming %s and the remedy", err, path)
	}
	if _, err := ReadShard(dir, "t08"); err == nil || !strings.Contains(err.Error(), "delete "+bad) {
		t.Errorf("ReadShard error = %v, want the remedy", err)
	}
	if err := Compact(dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Compact with a damaged shard: err = %v, want one naming %s", err, path)
	}
	shards, damaged, err := ScanShards(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 2 || shards["t09"] == nil || shards["t07"] == nil || len(damaged) != 1 || damaged["t08"] == nil {
		t.Errorf("ScanShards: %d shards, damaged %v; want t09 and t07 read, t08 damaged", len(shards), damaged)
	}
	// The remedy works: the trial's folder removed, the rest reads.
	if err := os.RemoveAll(bad); err != nil {
		t.Fatal(err)
	}
	if shards, err := ReadShards(dir); err != nil || len(shards) != 2 {
		t.Errorf("after removing the damaged shard: %d shards, %v", len(shards), err)
	}
}

// TestTableChecksum: every read path of a compacted table checks it.
func TestTableChecksum(t *testing.T) {
	for _, name := range []string{TrialsFile, StepsFile, SpectraFile} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeSweep(t, dir, []int{0, 1})
			if err := Compact(dir); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name)
			flipByte(t, path, 0) // the magic number: a damage every reader sees
			flipByte(t, path, 0)
			data, _ := os.ReadFile(path)
			flipByte(t, path, len(data)-12) // inside the footer, which no page CRC covers
			reads := map[string]func() error{
				"ReadTrials":  func() error { _, err := ReadTrials(path); return err },
				"ReadSteps":   func() error { _, err := ReadSteps(path); return err },
				"ReadSpectra": func() error { _, err := ReadSpectra(path); return err },
				"ReadArrow": func() error {
					tbl, err := ReadArrow(path)
					if err == nil {
						tbl.Release()
					}
					return err
				},
			}
			for what, read := range reads {
				if err := read(); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
					t.Errorf("%s: err = %v, want ErrDamaged naming %s", what, err, path)
				}
			}
		})
	}
}

// TestTablesStale: the tables' checksums.json records the shards they were
// compacted from, so a shard written, rewritten or removed since is seen.
func TestTablesStale(t *testing.T) {
	dir := t.TempDir()
	writeSweep(t, dir, []int{0, 1})
	if err := Compact(dir); err != nil {
		t.Fatal(err)
	}
	check := func(want string) {
		t.Helper()
		got, err := TablesStale(dir)
		if err != nil || !strings.Contains(got, want) || (want == "") != (got == "") {
			t.Errorf("TablesStale = %q, %v; want %q", got, err, want)
		}
	}
	check("")
	writeSweep(t, dir, []int{2}) // a trial ended after the compaction
	check("1 new shard since trials.parquet was compacted")
	if err := Compact(dir); err != nil {
		t.Fatal(err)
	}
	check("")
	s := sampleShard("t09", 0, false) // a rerun trial
	s.Trial.Status = StatusFailed
	if err := WriteShard(dir, s); err != nil {
		t.Fatal(err)
	}
	check("1 rewritten shard")
	if err := os.RemoveAll(ShardDir(dir, "t08")); err != nil {
		t.Fatal(err)
	}
	check("1 removed shard")
	// Tables written before checksums existed are compared by time.
	if err := Compact(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, ChecksumsFile)); err != nil {
		t.Fatal(err)
	}
	check("")
	writeSweep(t, dir, []int{3})
	fi, err := os.Stat(filepath.Join(dir, TrialsFile))
	if err != nil {
		t.Fatal(err)
	}
	later := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(filepath.Join(ShardDir(dir, "t06"), shardTrialFile), later, later); err != nil {
		t.Fatal(err)
	}
	check("1 shard written after trials.parquet")
}

// TestManifestChecksum: any change to a written manifest is an error
// naming it; a manifest without a checksum (older, or by hand) still reads.
func TestManifestChecksum(t *testing.T) {
	dir := t.TempDir()
	m := &Manifest{Sweep: "quick", SourceHash: "sha256:ab", SweepSource: "x = 1\n"}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"checksum": "sha256:`) {
		t.Fatalf("manifest has no checksum:\n%s", data)
	}
	for _, edit := range []struct{ from, to string }{
		{`"quick"`, `"quack"`}, {`x = 1`, `x = 2`}, {`"sha256:ab"`, `"sha256:ac"`},
	} {
		if err := os.WriteFile(path, []byte(strings.Replace(string(data), edit.from, edit.to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadManifest(dir); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s → %s: err = %v, want ErrDamaged naming %s", edit.from, edit.to, err, path)
		}
	}
	plain := `{"sweep": "quick", "source_hash": "h"}`
	if err := os.WriteFile(path, []byte(plain), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadManifest(dir); err != nil || got.Sweep != "quick" {
		t.Errorf("manifest without checksum: %+v, %v", got, err)
	}
}
