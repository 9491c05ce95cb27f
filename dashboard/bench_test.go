package dashboard

import (
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"peftbench/results"
)

// BenchmarkRuns570 measures the polling path on a compacted folder of 570
// trials (5 steps each): /api/version (stat calls only) and /api/runs
// when nothing changed (the cached table re-encoded), and a cold /api/runs.
func BenchmarkRuns570(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "big")
	var trials []fixtureTrial
	for i := range 570 {
		trials = append(trials, fixtureTrial{id: fmt.Sprintf("t%03d", i), method: "lora", rank: int64(1 + i%5), seed: int64(i % 3),
			lr: float64(1+i%19) * 1e-4, done: true, status: "ok", target: float64(i%100) / 100, steps: 5})
	}
	writeFixture(b, dir, "big", trials)
	if err := results.Compact(dir); err != nil {
		b.Fatal(err)
	}
	get := func(srv *Server, u string) {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
		if rec.Code != 200 {
			b.Fatalf("%s: %d", u, rec.Code)
		}
	}
	b.Run("cold-runs", func(b *testing.B) {
		for b.Loop() {
			srv, _ := New([]string{dir})
			get(srv, "/api/runs?s=0")
		}
	})
	srv, _ := New([]string{dir})
	get(srv, "/api/runs?s=0")
	b.Run("warm-runs", func(b *testing.B) {
		for b.Loop() {
			get(srv, "/api/runs?s=0")
		}
	})
	b.Run("version", func(b *testing.B) {
		for b.Loop() {
			get(srv, "/api/version")
		}
	})
}
