package results

import (
	"fmt"
	"testing"
)

// benchShard is a typical small trial: 100 steps of 3 metrics, 64
// singular directions.
func benchShard(id string, index int64) *Shard {
	s := sampleShard(id, index, true)
	s.Steps = s.Steps[:0]
	for step := int64(0); step < 100; step++ {
		for _, m := range []string{"loss", "grad_norm", "lr"} {
			s.Steps = append(s.Steps, StepRow{TrialID: id, Step: step, Split: "train", Metric: m, Value: 1 / float64(step+1)})
		}
	}
	s.Spectra = s.Spectra[:0]
	for i := int64(0); i < 64; i++ {
		s.Spectra = append(s.Spectra, SpectrumRow{TrialID: id, Layer: "fc1", Index: i, SigmaBase: 1, SigmaTuned: 1, MaxCos: 0.5, Intruder: []bool{false, true, true}})
	}
	return s
}

// BenchmarkWriteShard is the per-trial recording cost (encode three
// tables, write, fsync, rename).
func BenchmarkWriteShard(b *testing.B) {
	dir := b.TempDir()
	s := benchShard("t", 0)
	for i := 0; b.Loop(); i++ {
		s.Trial.TrialID = fmt.Sprintf("t%06d", i)
		for j := range s.Steps {
			s.Steps[j].TrialID = s.Trial.TrialID
		}
		for j := range s.Spectra {
			s.Spectra[j].TrialID = s.Trial.TrialID
		}
		if err := WriteShard(dir, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompact100 compacts a sweep of 100 such shards; the reported
// time divided by 100 is the per-trial compaction cost.
func BenchmarkCompact100(b *testing.B) {
	dir := b.TempDir()
	for i := range 100 {
		id := fmt.Sprintf("t%03d", i)
		if err := WriteShard(dir, benchShard(id, int64(i))); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if err := Compact(dir); err != nil {
			b.Fatal(err)
		}
	}
}
