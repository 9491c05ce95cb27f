package analysis

import (
	"bufio"
	"bytes"
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

	"peftbench/internal/atomicfile"
)

// BaseCache holds base decompositions keyed by the content hash of the base
// matrix, so each is computed once per base model rather than once per
// trial. It is safe for concurrent use; concurrent requests for one matrix
// share a single computation. With a directory, decompositions also persist
// across processes as binary files named by the hash.
//
// A file is trusted only when it is exactly the size the matrix implies
// (checked before anything is allocated), names the matrix's hash, has the
// matrix's dimensions and matches its recorded SHA-256; any other file is
// reported to Log, recomputed and replaced atomically. Reading a file or
// computing anew gives the same bits.
type BaseCache struct {
	dir string
	// Log receives warnings (a cache file being recomputed); nil discards
	// them. Set it before the first Get.
	Log io.Writer

	mu sync.Mutex
	m  map[string]*cacheEntry
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

func (c *BaseCache) warnf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

func (c *BaseCache) load(ctx context.Context, key string, w0 mat.Matrix) (*BaseSpectrum, error) {
	path := ""
	if c.dir != "" {
		path = filepath.Join(c.dir, key+".spectrum")
		r, cols := w0.Dims()
		bs, err := readSpectrum(path, key, r, cols)
		if err == nil {
			return bs, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			// Recomputed below and replaced by an atomic rename.
			c.warnf("analysis: warning: base cache: %v; recomputing", err)
		}
	}
	bs, err := DecomposeBaseContext(ctx, w0)
	if err != nil || path == "" {
		return bs, err
	}
	if err := writeSpectrum(path, key, bs); err != nil {
		return nil, err
	}
	return bs, nil
}

// The file format (version 2): magic, the matrix hash (32 bytes), rows,
// cols, k = min(rows, cols) (uint64 LE), k σ values and the rows×k U,
// row-major, as float64 LE, then the SHA-256 of everything before it.
var spectrumMagic = [8]byte{'P', 'E', 'F', 'T', 'S', 'V', 'D', '2'}

const spectrumHeader = 8 + sha256.Size + 3*8

// spectrumSize is the exact size of the file of a rows×cols matrix, or -1
// when it would not fit an int64.
func spectrumSize(rows, cols int) int64 {
	if rows <= 0 || cols <= 0 {
		return -1
	}
	k := int64(min(rows, cols))
	n := k * (int64(rows) + 1) // σ and U values
	if k != 0 && n/k != int64(rows)+1 || n > (math.MaxInt64-spectrumHeader-sha256.Size)/8 {
		return -1
	}
	return spectrumHeader + 8*n + sha256.Size
}

func writeSpectrum(path, key string, bs *BaseSpectrum) error {
	sum, err := hex.DecodeString(key)
	if err != nil || len(sum) != sha256.Size {
		return fmt.Errorf("analysis: base cache: bad key %q", key)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("analysis: base cache: %w", err)
	}
	err = atomicfile.Write(path, func(f io.Writer) error {
		h := sha256.New()
		w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
		k := len(bs.Sigma)
		hdr := []uint64{uint64(bs.Rows), uint64(bs.Cols), uint64(k)}
		w.Write(spectrumMagic[:])
		w.Write(sum)
		binary.Write(w, binary.LittleEndian, hdr)
		binary.Write(w, binary.LittleEndian, bs.Sigma)
		raw := bs.U.RawMatrix()
		for i := range raw.Rows {
			binary.Write(w, binary.LittleEndian, raw.Data[i*raw.Stride:i*raw.Stride+raw.Cols])
		}
		if err := w.Flush(); err != nil {
			return err
		}
		_, err := f.Write(h.Sum(nil))
		return err
	})
	if err != nil {
		return fmt.Errorf("analysis: base cache: %s: %w", path, err)
	}
	return nil
}

// readSpectrum reads the decomposition of the rows×cols matrix whose hash
// is key. It returns an error wrapping os.ErrNotExist when there is no
// file, and another error when the file is not that matrix's: of another
// size (checked before reading, so a crafted header allocates nothing),
// another version, matrix or shape, or a damaged one (its SHA-256).
func readSpectrum(path, key string, rows, cols int) (*BaseSpectrum, error) {
	want := spectrumSize(rows, cols)
	if want < 0 {
		return nil, fmt.Errorf("analysis: base cache: %s: no file for a %d×%d matrix", path, rows, cols)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("analysis: base cache: %s: %w", path, err)
	}
	if fi.Size() != want {
		return nil, fmt.Errorf("analysis: base cache: %s: %d bytes, want %d for a %d×%d matrix", path, fi.Size(), want, rows, cols)
	}
	b := make([]byte, want)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("analysis: base cache: %s: %w", path, noNotExist(err))
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("analysis: base cache: %s: SHA-256 %x, recorded %x: damaged", path, got[:8], sum[:8])
	}
	if !bytes.Equal(body[:8], spectrumMagic[:]) {
		return nil, fmt.Errorf("analysis: base cache: %s: not a version-2 spectrum file", path)
	}
	if got := hex.EncodeToString(body[8 : 8+sha256.Size]); got != key {
		return nil, fmt.Errorf("analysis: base cache: %s: holds matrix %s", path, got[:16])
	}
	p := body[8+sha256.Size:]
	hr, hc, hk := binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:]), binary.LittleEndian.Uint64(p[16:])
	k := min(rows, cols)
	if hr != uint64(rows) || hc != uint64(cols) || hk != uint64(k) {
		return nil, fmt.Errorf("analysis: base cache: %s: header %d×%d (k %d), want %d×%d (k %d)", path, hr, hc, hk, rows, cols, k)
	}
	p = p[24:]
	vals := make([]float64, k*(rows+1))
	for i := range vals {
		vals[i] = math.Float64frombits(binary.LittleEndian.Uint64(p[8*i:]))
	}
	if !finite(vals) {
		return nil, fmt.Errorf("analysis: base cache: %s: non-finite values", path)
	}
	return &BaseSpectrum{Rows: rows, Cols: cols, Sigma: vals[:k:k], U: mat.NewDense(rows, k, vals[k:])}, nil
}

// noNotExist hides os.ErrNotExist: a file that vanished while read is a
// damaged one, not an absent one.
func noNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return errors.New(err.Error())
	}
	return err
}
