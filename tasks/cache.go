package tasks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"peftbench/internal/atomicfile"
	"peftbench/nn"
	"peftbench/safetensors"
)

// CacheEnv is the environment variable that moves the default cache folder.
const CacheEnv = "PEFTBENCH_CACHE"

// DefaultCacheDir returns $PEFTBENCH_CACHE if set, else
// os.UserCacheDir()/peftbench.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("tasks: no cache folder (set %s): %w", CacheEnv, err)
	}
	return filepath.Join(d, "peftbench"), nil
}

// Cache stores pretrained base models content-addressed in a folder: the
// key is the SHA-256 of the task name, its recipe version, its base options
// (base_seed included) and a fingerprint of its data. An entry is
// <key>.safetensors (the weights, written deterministically) and
// <key>.json (Entry: what it is, the SHA-256 of the weights file, the
// quality reached and how long pretraining took).
//
// A Cache is safe for concurrent use, and several processes may share a
// folder: a base is pretrained once whoever asks (one goroutine per process
// under a lock file, the others wait and read the result), files are
// written to temporary names and renamed, and an entry whose weights do not
// match its recorded size (checked before the file is read) and SHA-256, or
// do not load strictly into the task's model (names and shapes), is
// reported to Log and rebuilt, never used.
type Cache struct {
	dir string
	// Log receives warnings (a corrupt entry being rebuilt) and one line
	// per pretraining; nil discards them.
	Log io.Writer

	mu      sync.Mutex
	flights map[string]*flight
	builds  atomic.Int64
}

type flight struct {
	done  chan struct{}
	data  []byte
	entry *Entry
	err   error
}

// Entry is the JSON metadata of a cached base model.
type Entry struct {
	Key             string             `json:"key"`
	Task            string             `json:"task"`
	Recipe          int                `json:"recipe"`
	Options         map[string]any     `json:"options"`
	Data            string             `json:"data,omitempty"` // fingerprint of the task's data
	SHA256          string             `json:"sha256"`         // of the .safetensors file
	Size            int64              `json:"size"`
	Quality         map[string]float64 `json:"quality"`
	PretrainSeconds float64            `json:"pretrain_seconds"`
	Created         time.Time          `json:"created"`
	GoVersion       string             `json:"go_version"`
}

// NewCache returns a cache in dir, created when first written; "" means
// DefaultCacheDir.
func NewCache(dir string) (*Cache, error) {
	if dir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	return &Cache{dir: dir, flights: map[string]*flight{}}, nil
}

// Dir returns the cache folder.
func (c *Cache) Dir() string { return c.dir }

// Builds returns how many base models this Cache has pretrained (not read).
func (c *Cache) Builds() int64 { return c.builds.Load() }

func (c *Cache) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// baseSpec identifies a base model.
type baseSpec struct {
	Task    string         `json:"task"`
	Recipe  int            `json:"recipe"`
	Options map[string]any `json:"options"`
	Data    string         `json:"data,omitempty"`
}

func (s baseSpec) key() string {
	b, err := json.Marshal(s) // map keys are sorted: canonical
	if err != nil {
		panic(fmt.Sprintf("tasks: cache key: %v", err))
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Path returns the weights file of a key.
func (c *Cache) path(key, ext string) string { return filepath.Join(c.dir, key+ext) }

// base returns the cached base model of spec, pretraining it with train on
// a fresh model from newModel when the cache has no valid entry. Every call
// returns a new model holding the entry's weights.
func (c *Cache) base(ctx context.Context, spec baseSpec, newModel func() Model,
	train func(ctx context.Context, m Model) (map[string]float64, error)) (Model, *Entry, error) {
	data, e, err := c.get(ctx, spec, func(ctx context.Context) ([]byte, map[string]float64, error) {
		m := newModel()
		q, err := train(ctx, m)
		if err != nil {
			return nil, nil, err
		}
		var buf bytes.Buffer
		if err := writeState(&buf, m); err != nil {
			return nil, nil, fmt.Errorf("tasks: %s: %w", spec.Task, err)
		}
		return buf.Bytes(), q, nil
	}, func(data []byte) error { return loadWeights(newModel(), data) })
	if err != nil {
		return nil, nil, err
	}
	m := newModel()
	if err := loadWeights(m, data); err != nil {
		return nil, nil, fmt.Errorf("tasks: %s: cache entry %s: %w", spec.Task, e.Key, err)
	}
	return m, e, nil
}

// writeState writes m's state dict in safetensors format; the bytes depend
// on the weights alone.
func writeState(w io.Writer, m Model) error {
	return safetensors.Write(w, stateTensors(m), nil)
}

func stateTensors(m Model) []safetensors.Tensor {
	sd := m.StateDict()
	names := make([]string, 0, len(sd))
	for k := range sd {
		names = append(names, k)
	}
	slices.Sort(names)
	ts := make([]safetensors.Tensor, len(names))
	for i, n := range names {
		ts[i] = safetensors.Tensor{Name: n, Shape: sd[n].Shape, Data: sd[n].Data}
	}
	return ts
}

func loadWeights(m Model, data []byte) error {
	f, err := safetensors.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	sd := map[string]*nn.Tensor{}
	for _, n := range f.Names() {
		d, shape, err := f.Tensor(n)
		if err != nil {
			return err
		}
		sd[n] = nn.FromData(d, shape...)
	}
	return m.LoadStateDict(sd)
}

// get returns the weights file bytes of spec: from this process's flight
// if one is under way, else from disk, else built (once across processes).
// An entry on disk must pass check (nil: none), the model's strict load:
// one whose checksum holds but whose tensors do not fit is rebuilt too.
func (c *Cache) get(ctx context.Context, spec baseSpec,
	build func(ctx context.Context) ([]byte, map[string]float64, error), check func([]byte) error) ([]byte, *Entry, error) {
	key := spec.key()
	for {
		c.mu.Lock()
		f, ok := c.flights[key]
		if !ok {
			f = &flight{done: make(chan struct{})}
			c.flights[key] = f
			c.mu.Unlock()
			c.lead(ctx, f, key, spec, build, check)
			return f.data, f.entry, f.err
		}
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		// The leader's cancellation is not ours: try again.
		if f.err != nil && isCtxErr(f.err) && ctx.Err() == nil {
			continue
		}
		return f.data, f.entry, f.err
	}
}

// lead fills the flight f of key and releases it whatever happens: a panic
// while building (a bug, or options the task did not refuse) becomes the
// error of this flight's callers alone, and the next caller builds afresh.
func (c *Cache) lead(ctx context.Context, f *flight, key string, spec baseSpec,
	build func(ctx context.Context) ([]byte, map[string]float64, error), check func([]byte) error) {
	defer func() {
		if p := recover(); p != nil {
			f.data, f.entry = nil, nil
			f.err = fmt.Errorf("tasks: %s: building the base model panicked: %v", spec.Task, p)
			c.logf("tasks: %s: building base %s panicked: %v\n%s", spec.Task, key[:12], p, debug.Stack())
		}
		c.mu.Lock()
		delete(c.flights, key)
		c.mu.Unlock()
		close(f.done)
	}()
	f.data, f.entry, f.err = c.fill(ctx, key, spec, build, check)
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fill reads key's entry under the folder's lock file, building and
// writing it if absent or corrupt.
func (c *Cache) fill(ctx context.Context, key string, spec baseSpec,
	build func(ctx context.Context) ([]byte, map[string]float64, error), check func([]byte) error) ([]byte, *Entry, error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("tasks: cache: %w", err)
	}
	unlock, err := lockFile(ctx, c.path(key, ".lock"))
	if err != nil {
		return nil, nil, fmt.Errorf("tasks: cache: %w", err)
	}
	defer unlock()
	data, e, err := c.read(key)
	if err == nil && check != nil {
		if cerr := check(data); cerr != nil {
			err = fmt.Errorf("weights do not fit the model: %v", cerr)
		}
	}
	switch {
	case err == nil:
		return data, e, nil
	case errors.Is(err, fs.ErrNotExist):
	default:
		c.logf("tasks: warning: cache entry %s (%s) is corrupt, rebuilding: %v", key, spec.Task, err)
	}
	start := time.Now()
	data, q, err := build(ctx)
	if err != nil {
		return nil, nil, err
	}
	c.builds.Add(1)
	sum := sha256.Sum256(data)
	e = &Entry{
		Key: key, Task: spec.Task, Recipe: spec.Recipe, Options: spec.Options, Data: spec.Data,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Quality: q,
		PretrainSeconds: time.Since(start).Seconds(), Created: time.Now().UTC(), GoVersion: runtime.Version(),
	}
	c.logf("tasks: pretrained %s base %s in %.1fs (quality %v)", spec.Task, key[:12], e.PretrainSeconds, q)
	js, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("tasks: cache: %w", err)
	}
	// Weights first, metadata last: the JSON file commits the entry.
	if err := writeAtomic(c.path(key, ".safetensors"), data); err != nil {
		return nil, nil, err
	}
	if err := writeAtomic(c.path(key, ".json"), append(js, '\n')); err != nil {
		return nil, nil, err
	}
	return data, e, nil
}

// read returns a verified entry, an error wrapping fs.ErrNotExist when
// there is none, or another error when it is corrupt.
func (c *Cache) read(key string) ([]byte, *Entry, error) {
	js, err := os.ReadFile(c.path(key, ".json"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("metadata: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(js, &e); err != nil {
		return nil, nil, fmt.Errorf("metadata: %w", err)
	}
	if e.Key != key {
		return nil, nil, fmt.Errorf("metadata names key %s", e.Key)
	}
	// The size first: a file grown or replaced (a crafted or damaged one
	// of any length) is refused before it is read into memory.
	fi, err := os.Stat(c.path(key, ".safetensors"))
	if err != nil {
		return nil, nil, fmt.Errorf("weights: %w", noNotExist(err))
	}
	if fi.Size() != e.Size {
		return nil, nil, fmt.Errorf("weights: %d bytes, metadata says %d", fi.Size(), e.Size)
	}
	data, err := os.ReadFile(c.path(key, ".safetensors"))
	if err != nil {
		return nil, nil, fmt.Errorf("weights: %w", noNotExist(err))
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != e.SHA256 || int64(len(data)) != e.Size {
		return nil, nil, fmt.Errorf("weights: %d bytes with SHA-256 %s, metadata says %d bytes with %s", len(data), got[:16], e.Size, e.SHA256)
	}
	return data, &e, nil
}

// noNotExist hides fs.ErrNotExist: missing weights beside their metadata
// are a corrupt entry, not an absent one.
func noNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New(err.Error())
	}
	return err
}

func writeAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("tasks: cache: %w", err)
	}
	return nil
}
