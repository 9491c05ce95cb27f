package plots

import (
	"path/filepath"
	"strings"
	"testing"

	"peftbench/results"
)

// TestLoadStaleTable: after a run killed between a trial's end and the
// compaction (a resumed run that wrote shards the tables lack), Load reads
// the shards, with a warning, instead of the stale trials.parquet.
func TestLoadStaleTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fixture")
	shards := fixtureShards()[:3]
	for _, s := range shards[:2] {
		if err := results.WriteShard(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := results.Compact(dir); err != nil {
		t.Fatal(err)
	}
	if err := results.WriteManifest(dir, &results.Manifest{Sweep: "fixture"}); err != nil {
		t.Fatal(err)
	}
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Trials) != 2 || !d.Compacted || len(d.Warnings) != 0 {
		t.Fatalf("fresh tables: %d trials, compacted %v, warnings %q", len(d.Trials), d.Compacted, d.Warnings)
	}

	// The resumed run finished a third trial, then was killed.
	if err := results.WriteShard(dir, shards[2]); err != nil {
		t.Fatal(err)
	}
	d, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Trials) != 3 || d.Trial(shards[2].Trial.TrialID) == nil || d.Compacted {
		t.Errorf("stale tables: read %d trials (compacted %v), want the 3 of the shards", len(d.Trials), d.Compacted)
	}
	if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "trials.parquet is stale (1 new shard") {
		t.Errorf("warnings = %q, want one saying trials.parquet is stale", d.Warnings)
	}
	if len(d.Steps) != len(shards[0].Steps)+len(shards[1].Steps)+len(shards[2].Steps) {
		t.Errorf("%d step rows, want those of the 3 shards", len(d.Steps))
	}
}
