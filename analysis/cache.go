package analysis

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"

	"gonum.org/v1/gonum/mat"
)

// BaseCache holds base decompositions keyed by the content hash of the base
// matrix, so each is computed once per base model rather than once per
// trial. It is safe for concurrent use; concurrent requests for one matrix
// share a single computation. With a directory, decompositions also persist
// across processes as binary files named by the hash.
type BaseCache struct {
	dir string
	mu  sync.Mutex
	m   map[string]*cacheEntry
}

type cacheEntry struct {
	done chan struct{}
	bs   *BaseSpectrum
	err  error
}

// NewBaseCache returns a cache; dir "" keeps it in memory only.
func NewBaseCache(dir string) *BaseCache {
	return &BaseCache{dir: dir, m: make(map[string]*cacheEntry)}
}

// MatrixHash is the hex SHA-256 of a matrix's shape and float64 bits.
func MatrixHash(w mat.Matrix) string {
	r, c := w.Dims()
	h := sha256.New()
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(r))
	h.Write(buf[:])
	binary.LittleEndian.PutUint64(buf[:], uint64(c))
	h.Write(buf[:])
	row := make([]byte, 8*c)
	for i := range r {
		for j := range c {
			binary.LittleEndian.PutUint64(row[8*j:], math.Float64bits(w.At(i, j)))
		}
		h.Write(row)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Get returns the decomposition of w0, computing it at most once.
func (c *BaseCache) Get(w0 mat.Matrix) (*BaseSpectrum, error) {
	return c.GetContext(context.Background(), w0)
}

// GetContext is Get, returning ctx's error soon after ctx is done, whether
// it computes the decomposition or waits for another caller's. A caller
// whose ctx is still live retries when the computation it waited for was
// cancelled by its own caller's ctx. Failures are not cached.
func (c *BaseCache) GetContext(ctx context.Context, w0 mat.Matrix) (*BaseSpectrum, error) {
	if err := checkFinite("base matrix", w0); err != nil {
		return nil, err
	}
	key := MatrixHash(w0)
	for {
		c.mu.Lock()
		e, ok := c.m[key]
		if !ok {
			e = &cacheEntry{done: make(chan struct{})}
			c.m[key] = e
			c.mu.Unlock()
			c.fill(ctx, e, key, w0)
			return e.bs, e.err
		}
		c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil && isCtxErr(e.err) && ctx.Err() == nil {
			continue // the computing caller's cancellation, not ours
		}
		return e.bs, e.err
	}
}

// fill computes (or reads) e and releases it whatever happens: a failure,
// a panic included, is not cached, so the next caller tries again.
func (c *BaseCache) fill(ctx context.Context, e *cacheEntry, key string, w0 mat.Matrix) {
	defer func() {
		if p := recover(); p != nil {
			e.bs, e.err = nil, fmt.Errorf("analysis: base decomposition panicked: %v", p)
		}
		if e.err != nil {
			c.mu.Lock()
			delete(c.m, key)
			c.mu.Unlock()
		}
		close(e.done)
	}()
	e.bs, e.err = c.load(ctx, key, w0)
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (c *BaseCache) load(ctx context.Context, key string, w0 mat.Matrix) (*BaseSpectrum, error) {
	path := ""
	if c.dir != "" {
		path = filepath.Join(c.dir, key+".spectrum")
		if bs, err := readSpectrum(path); err == nil {
			return bs, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			// A damaged file is recomputed and replaced.
			_ = os.Remove(path)
		}
	}
	bs, err := DecomposeBaseContext(ctx, w0)
	if err != nil || path == "" {
		return bs, err
	}
	if err := writeSpectrum(path, bs); err != nil {
		return nil, err
	}
	return bs, nil
}

// The file format: magic, rows, cols, k (uint64 LE), then k σ values and the
// rows×k U, row-major, as float64 LE.
var spectrumMagic = [8]byte{'P', 'E', 'F', 'T', 'S', 'V', 'D', '1'}

func writeSpectrum(path string, bs *BaseSpectrum) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("analysis: base cache: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".spectrum-*")
	if err != nil {
		return fmt.Errorf("analysis: base cache: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	w := bufio.NewWriterSize(f, 1<<20)
	k := len(bs.Sigma)
	hdr := []uint64{uint64(bs.Rows), uint64(bs.Cols), uint64(k)}
	w.Write(spectrumMagic[:])
	binary.Write(w, binary.LittleEndian, hdr)
	binary.Write(w, binary.LittleEndian, bs.Sigma)
	raw := bs.U.RawMatrix()
	for i := range raw.Rows {
		binary.Write(w, binary.LittleEndian, raw.Data[i*raw.Stride:i*raw.Stride+raw.Cols])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("analysis: base cache: %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("analysis: base cache: %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("analysis: base cache: %w", err)
	}
	return nil
}

func readSpectrum(path string) (*BaseSpectrum, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var magic [8]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || magic != spectrumMagic {
		return nil, fmt.Errorf("analysis: base cache: %s: not a spectrum file", path)
	}
	var hdr [3]uint64
	if err := binary.Read(r, binary.LittleEndian, hdr[:]); err != nil {
		return nil, fmt.Errorf("analysis: base cache: %s: %w", path, err)
	}
	rows, cols, k := int(hdr[0]), int(hdr[1]), int(hdr[2])
	if k != min(rows, cols) || rows <= 0 || rows > 1<<20 || cols > 1<<20 {
		return nil, fmt.Errorf("analysis: base cache: %s: bad header %v", path, hdr)
	}
	sig := make([]float64, k)
	u := make([]float64, rows*k)
	if err := binary.Read(r, binary.LittleEndian, sig); err != nil {
		return nil, fmt.Errorf("analysis: base cache: %s: %w", path, err)
	}
	if err := binary.Read(r, binary.LittleEndian, u); err != nil {
		return nil, fmt.Errorf("analysis: base cache: %s: %w", path, err)
	}
	return &BaseSpectrum{Rows: rows, Cols: cols, Sigma: sig, U: mat.NewDense(rows, k, u)}, nil
}
