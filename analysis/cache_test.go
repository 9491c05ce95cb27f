package analysis

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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

// spectrumFile computes w0's decomposition through a cache on a fresh
// folder and returns the folder and the path of its file.
func spectrumFile(t *testing.T, w0 mat.Matrix) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := NewBaseCache(dir).Get(w0); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, MatrixHash(w0)+".spectrum")
}

func sameSpectrum(a, b *BaseSpectrum) bool {
	return a.Rows == b.Rows && a.Cols == b.Cols && equalFloats(a.Sigma, b.Sigma) && mat.Equal(a.U, b.U)
}

// TestBaseCacheFlippedByte: a cache file with any one byte changed (the
// magic, the matrix hash, the header, a σ, U, the checksum) is detected,
// reported, recomputed and replaced: the results equal an uncached run's,
// bit for bit. The old reader returned σ = 3.8e117 from an overwritten
// exponent byte.
func TestBaseCacheFlippedByte(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	w0 := randDense(rng, 20, 12)
	want, err := DecomposeBase(w0)
	if err != nil {
		t.Fatal(err)
	}
	dir, path := spectrumFile(t, w0)
	clean, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := len(clean)
	// σ₀'s exponent byte (the σ values follow the 64-byte header), and
	// bytes across every part of the file.
	for _, at := range []int{64 + 7, 0, 5, 8, 39, 40, 50, 63, 64, 100, 64 + 8*12, n / 2, n - 33, n - 32, n - 1} {
		b := append([]byte(nil), clean...)
		b[at] ^= 0x5a
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var log strings.Builder
		c := NewBaseCache(dir)
		c.Log = &log
		got, err := c.Get(w0)
		if err != nil {
			t.Fatalf("byte %d: %v", at, err)
		}
		if !sameSpectrum(got, want) {
			t.Errorf("byte %d flipped: σ₀ = %v, want %v (the uncached decomposition)", at, got.Sigma[0], want.Sigma[0])
		}
		if !strings.Contains(log.String(), "recomputing") {
			t.Errorf("byte %d flipped: no warning; log %q", at, log.String())
		}
		// Replaced: the file is the clean one again.
		if b, _ := os.ReadFile(path); !bytes.Equal(b, clean) {
			t.Errorf("byte %d flipped: the file was not replaced", at)
		}
	}
	// An old-format (version 1) file is recomputed too.
	old := append([]byte("PEFTSVD1"), make([]byte, 24)...)
	binary.LittleEndian.PutUint64(old[8:], 20)
	binary.LittleEndian.PutUint64(old[16:], 12)
	binary.LittleEndian.PutUint64(old[24:], 12)
	old = append(old, make([]byte, 8*(12+20*12))...)
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := NewBaseCache(dir).Get(w0); err != nil || !sameSpectrum(got, want) {
		t.Errorf("version-1 file: err %v, same %v", err, err == nil && sameSpectrum(got, want))
	}
}

// TestBaseCacheCraftedHeader: a 1 KB file whose header claims a 10⁶×10⁶
// matrix (10¹² elements; the old reader allocated them and the process
// died out of memory) is refused by its size before anything is
// allocated, and the decomposition recomputed.
func TestBaseCacheCraftedHeader(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	w0 := randDense(rng, 20, 12)
	want, err := DecomposeBase(w0)
	if err != nil {
		t.Fatal(err)
	}
	key := MatrixHash(w0)
	sum, _ := hex.DecodeString(key)
	for _, version := range []string{"1", "2"} {
		t.Run("version "+version, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, key+".spectrum")
			b := []byte("PEFTSVD" + version)
			if version == "2" {
				b = append(b, sum...)
			}
			for range 3 {
				b = binary.LittleEndian.AppendUint64(b, 1_000_000)
			}
			b = append(b, make([]byte, 1024-len(b))...)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, rerr := readSpectrum(path, key, 20, 12)
			runtime.ReadMemStats(&after)
			if rerr == nil {
				t.Error("crafted file read")
			}
			if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
				t.Errorf("reading the crafted file allocated %d bytes", d)
			}
			got, err := NewBaseCache(dir).Get(w0)
			if err != nil || !sameSpectrum(got, want) {
				t.Fatalf("recompute: err %v", err)
			}
		})
	}
}
