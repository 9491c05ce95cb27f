package tasks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// smallTeacher is a teacher-shift instance that pretrains in well under a
// second, for cache tests.
func smallTeacher(t *testing.T, seed int) Instance {
	t.Helper()
	in, err := New("teacher-shift", map[string]any{"dim": 8, "hidden": 16, "pretrain_steps": 20, "eval_size": 64, "base_seed": seed})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func stateBytes(t *testing.T, m Model) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := writeState(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCacheSingleFlight: 4 goroutines in one process, plus a second Cache
// on the same folder (another process's view: its lock is a separate open
// file), ask for one base; it is pretrained once and all get identical bytes.
func TestCacheSingleFlight(t *testing.T) {
	dir := t.TempDir()
	c1, _ := NewCache(dir)
	c2, _ := NewCache(dir)
	in := smallTeacher(t, 7)
	var wg sync.WaitGroup
	got := make([][]byte, 6)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := c1
			if i >= 4 {
				c = c2
			}
			m, err := in.Base(context.Background(), c)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = stateBytes(t, m)
		}()
	}
	wg.Wait()
	if n := c1.Builds() + c2.Builds(); n != 1 {
		t.Errorf("%d pretraining runs, want 1", n)
	}
	for i := range got {
		if !bytes.Equal(got[i], got[0]) {
			t.Errorf("goroutine %d got different bytes", i)
		}
	}
	// A fresh cache on another folder rebuilds the same bytes: pretraining
	// is deterministic.
	c3, _ := NewCache(t.TempDir())
	m, err := in.Base(context.Background(), c3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stateBytes(t, m), got[0]) {
		t.Error("pretraining twice gave different bytes")
	}
}

// TestCacheCorrupt: a damaged weights file is detected by its checksum,
// reported, and rebuilt to the same bytes.
func TestCacheCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string) error
	}{
		{"flipped byte", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)-3] ^= 0x40
			return os.WriteFile(p, b, 0o644)
		}},
		{"truncated", func(p string) error { return os.Truncate(p, 100) }},
		{"missing", os.Remove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			c, _ := NewCache(t.TempDir())
			c.Log = &log
			in := smallTeacher(t, 3)
			m, err := in.Base(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			want := stateBytes(t, m)
			files, _ := os.ReadDir(c.Dir())
			var weights string
			for _, f := range files {
				if strings.HasSuffix(f.Name(), ".safetensors") {
					weights = c.Dir() + "/" + f.Name()
				}
			}
			if err := tc.damage(weights); err != nil {
				t.Fatal(err)
			}
			log.Reset()
			m, err = in.Base(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if c.Builds() != 2 {
				t.Errorf("%d builds, want 2 (the rebuild)", c.Builds())
			}
			if !strings.Contains(log.String(), "corrupt") {
				t.Errorf("no warning logged; log:\n%s", log.String())
			}
			if !bytes.Equal(stateBytes(t, m), want) {
				t.Error("rebuilt base differs")
			}
			// Now valid: read without a build or a warning.
			log.Reset()
			if _, err := in.Base(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			if c.Builds() != 2 || strings.Contains(log.String(), "corrupt") {
				t.Errorf("valid entry rebuilt (builds %d, log %q)", c.Builds(), log.String())
			}
		})
	}
}

// TestCacheKey: base options and base_seed change the key; fine-tuning
// options do not.
func TestCacheKey(t *testing.T) {
	info := teacherShift{}.Info()
	key := func(opts map[string]any) string {
		o, err := ResolveOptions("teacher-shift", opts)
		if err != nil {
			t.Fatal(err)
		}
		return baseSpec{Task: "teacher-shift", Recipe: 1, Options: baseOptions(info, o)}.key()
	}
	def := key(nil)
	for _, tc := range []struct {
		opts map[string]any
		same bool
	}{
		{map[string]any{"perturb_rank": 8}, true},
		{map[string]any{"perturb_scale": 0.1, "stages": 3}, true},
		{map[string]any{"base_seed": 1}, false},
		{map[string]any{"hidden": 32}, false},
		{map[string]any{"pretrain_steps": 10}, false},
	} {
		if got := key(tc.opts) == def; got != tc.same {
			t.Errorf("%v: same key = %v, want %v", tc.opts, got, tc.same)
		}
	}
}

// TestCacheBuildPanic: a builder that panics, asked for by two goroutines
// at once, fails both with an error naming the task and the panic (no
// deadlock on the in-flight entry), and a later call builds afresh.
func TestCacheBuildPanic(t *testing.T) {
	var log bytes.Buffer
	c, _ := NewCache(t.TempDir())
	c.Log = &log
	spec := baseSpec{Task: "fake-task", Recipe: 1, Options: map[string]any{"dim": 30}}
	release := make(chan struct{})
	var calls sync.WaitGroup
	panicky := func(context.Context) ([]byte, map[string]float64, error) {
		<-release
		panic("bad config 30/4")
	}
	errs := make(chan error, 2)
	call := func() {
		defer calls.Done()
		// As the runner does for a trial: a panic that escapes fails the
		// caller alone.
		defer func() {
			if p := recover(); p != nil {
				errs <- fmt.Errorf("escaped panic: %v", p)
			}
		}()
		_, _, err := c.get(context.Background(), spec, panicky, nil)
		errs <- err
	}
	calls.Add(2)
	go call()
	// The second caller joins the first one's flight.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		n := len(c.flights)
		c.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("first caller never started its build")
		}
	}
	go call()
	time.Sleep(20 * time.Millisecond)
	close(release)
	done := make(chan struct{})
	go func() { calls.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("callers of a panicking build still blocked after 10 s")
	}
	close(errs)
	for err := range errs {
		if err == nil || !strings.Contains(err.Error(), "fake-task") || !strings.Contains(err.Error(), "panicked") || !strings.Contains(err.Error(), "bad config 30/4") {
			t.Errorf("error %v, want one naming fake-task, the panic and its value", err)
		}
	}
	if !strings.Contains(log.String(), "panicked") {
		t.Errorf("panic not logged; log:\n%s", log.String())
	}
	// A later call retries, with a working builder, and succeeds.
	want := []byte("weights")
	res := make(chan error, 1)
	go func() {
		data, _, err := c.get(context.Background(), spec, func(context.Context) ([]byte, map[string]float64, error) {
			return want, nil, nil
		}, nil)
		if err == nil && !bytes.Equal(data, want) {
			err = fmt.Errorf("got %q, want %q", data, want)
		}
		res <- err
	}()
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("build after the panic: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("build after the panic blocked for 10 s")
	}
}

// weightsFile returns the one .safetensors file of a cache folder.
func weightsFile(t *testing.T, c *Cache) string {
	t.Helper()
	files, _ := os.ReadDir(c.Dir())
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".safetensors") {
			return filepath.Join(c.Dir(), f.Name())
		}
	}
	t.Fatal("no weights file in the cache")
	return ""
}

// rebuiltAsFresh damages a cached base with damage, asks for it again, and
// checks that it was rebuilt with a warning to bytes identical to a build
// in an empty folder.
func rebuiltAsFresh(t *testing.T, damage func(c *Cache, weights string)) {
	t.Helper()
	var log bytes.Buffer
	c, _ := NewCache(t.TempDir())
	c.Log = &log
	in := smallTeacher(t, 3)
	if _, err := in.Base(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	damage(c, weightsFile(t, c))
	log.Reset()
	m, err := in.Base(context.Background(), c)
	if err != nil {
		t.Fatalf("Base after damage: %v", err)
	}
	if c.Builds() != 2 {
		t.Errorf("%d builds, want 2 (the rebuild)", c.Builds())
	}
	if !strings.Contains(log.String(), "corrupt") {
		t.Errorf("no warning logged; log:\n%s", log.String())
	}
	fresh, _ := NewCache(t.TempDir())
	f, err := in.Base(context.Background(), fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stateBytes(t, m), stateBytes(t, f)) {
		t.Error("rebuilt base differs from a fresh build")
	}
}

// TestCacheTensorByteFlip: one bit flipped inside a tensor's data (the
// safetensors header still parses, the shapes still fit) is caught by the
// entry's SHA-256, and the base rebuilt bit for bit.
func TestCacheTensorByteFlip(t *testing.T) {
	rebuiltAsFresh(t, func(_ *Cache, weights string) {
		b, err := os.ReadFile(weights)
		if err != nil {
			t.Fatal(err)
		}
		hdr := 8 + int(binary.LittleEndian.Uint64(b))
		b[hdr+(len(b)-hdr)/2] ^= 0x01
		if err := os.WriteFile(weights, b, 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCacheWrongShapes: an entry whose checksum holds but whose tensors do
// not fit the model (another model's weights, its metadata rewritten to
// match) is rebuilt rather than failing every trial that asks for it.
func TestCacheWrongShapes(t *testing.T) {
	rebuiltAsFresh(t, func(c *Cache, weights string) {
		other, err := New("teacher-shift", map[string]any{"dim": 8, "hidden": 8, "pretrain_steps": 2, "eval_size": 64})
		if err != nil {
			t.Fatal(err)
		}
		m, err := other.Base(context.Background(), newCacheMust(t))
		if err != nil {
			t.Fatal(err)
		}
		data := stateBytes(t, m)
		if err := os.WriteFile(weights, data, 0o644); err != nil {
			t.Fatal(err)
		}
		meta := strings.TrimSuffix(weights, ".safetensors") + ".json"
		js, err := os.ReadFile(meta)
		if err != nil {
			t.Fatal(err)
		}
		var e Entry
		if err := json.Unmarshal(js, &e); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		e.SHA256, e.Size = hex.EncodeToString(sum[:]), int64(len(data))
		js, _ = json.Marshal(e)
		if err := os.WriteFile(meta, js, 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCacheHugeFile: a weights file grown to 1 TiB (sparse) is refused by
// its size before it is read, and rebuilt; reading it first would exhaust
// memory.
func TestCacheHugeFile(t *testing.T) {
	rebuiltAsFresh(t, func(_ *Cache, weights string) {
		if err := os.Truncate(weights, 1<<40); err != nil {
			t.Skipf("no sparse 1 TiB file here: %v", err)
		}
	})
}

func newCacheMust(t *testing.T) *Cache {
	t.Helper()
	c, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}
