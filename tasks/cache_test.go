package tasks

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
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
