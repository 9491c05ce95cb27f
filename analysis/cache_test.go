package analysis

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestBaseCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	w0 := randDense(rng, 20, 12)
	dir := t.TempDir()
	c := NewBaseCache(dir)

	// Concurrent callers share one result.
	var wg sync.WaitGroup
	got := make([]*BaseSpectrum, 8)
	for i := range got {
		wg.Go(func() {
			bs, err := c.Get(w0)
			if err != nil {
				t.Error(err)
			}
			got[i] = bs
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("caller %d got a different decomposition", i)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.spectrum"))
	if len(files) != 1 || filepath.Base(files[0]) != MatrixHash(w0)+".spectrum" {
		t.Fatalf("cache files %v", files)
	}

	// A fresh cache on the same directory reads the file back.
	bs, err := NewBaseCache(dir).Get(w0)
	if err != nil {
		t.Fatal(err)
	}
	if bs.Rows != 20 || bs.Cols != 12 || !mat.Equal(bs.U, got[0].U) || !equalFloats(bs.Sigma, got[0].Sigma) {
		t.Error("decomposition read from disk differs from the computed one")
	}

	// A damaged file is recomputed.
	if err := os.WriteFile(files[0], []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	bs, err = NewBaseCache(dir).Get(w0)
	if err != nil || !equalFloats(bs.Sigma, got[0].Sigma) {
		t.Errorf("damaged file: %v", err)
	}

	// Another matrix gets another entry.
	w1 := mat.DenseCopyOf(w0)
	w1.Set(0, 0, w1.At(0, 0)+1)
	if MatrixHash(w1) == MatrixHash(w0) {
		t.Error("hash ignores content")
	}
	if MatrixHash(mat.NewDense(2, 3, nil)) == MatrixHash(mat.NewDense(3, 2, nil)) {
		t.Error("hash ignores shape")
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
