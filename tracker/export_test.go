package tracker_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/tracker"
)

// snapshot reads every file under dir: relative path → bytes; folders
// as "/" entries (so empty ones count).
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel+"/"] = nil
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExportDeterministic: exporting the same folder twice (to the same
// path, as MLflow's store holds absolute artifact URIs) gives the same
// files, byte for byte, in both formats. Planted bug it catches: a file
// name or wall time from the clock instead of started_at; a map walked in
// Go's random order (hparams, tags).
func TestExportDeterministic(t *testing.T) {
	s, _, err := tracker.Load(resultsFolder(t))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	export := func() map[string][]byte {
		if _, err := tracker.WriteTensorBoard(filepath.Join(out, "tb"), []*tracker.Sweep{s}); err != nil {
			t.Fatal(err)
		}
		if _, err := tracker.WriteMLflow(out, []*tracker.Sweep{s}); err != nil {
			t.Fatal(err)
		}
		snap := snapshot(t, out)
		if err := os.RemoveAll(out); err != nil {
			t.Fatal(err)
		}
		return snap
	}
	a, b := export(), export()
	if len(a) < 50 {
		t.Fatalf("only %d files and folders exported", len(a))
	}
	for p, x := range a {
		if y, ok := b[p]; !ok || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two exports", p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			t.Errorf("%s only in the second export", p)
		}
	}
}

// TestExportRefusesToOverwrite: a second export into the same place is
// refused, naming what exists, and leaves the first one intact.
func TestExportRefusesToOverwrite(t *testing.T) {
	s, _, err := tracker.Load(resultsFolder(t))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	sweeps := []*tracker.Sweep{s}
	if _, err := tracker.WriteTensorBoard(out, sweeps); err != nil {
		t.Fatal(err)
	}
	if _, err := tracker.WriteMLflow(out, sweeps); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, out)
	if _, err := tracker.WriteTensorBoard(out, sweeps); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second TensorBoard export: %v, want a refusal", err)
	}
	if _, err := tracker.WriteMLflow(out, sweeps); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second MLflow export: %v, want a refusal", err)
	}
	after := snapshot(t, out)
	if len(before) != len(after) {
		t.Errorf("%d files before the refused exports, %d after", len(before), len(after))
	}
}

// TestReaderRejectsDamage: the Python reader's CRC checks are live: one
// flipped bit in a record's length or payload, or a cut file, is an
// error. Without this, a reader that skipped its checks would pass the
// writer's bugs.
func TestReaderRejectsDamage(t *testing.T) {
	s, _, err := tracker.Load(resultsFolder(t))
	if err != nil {
		t.Fatal(err)
	}
	logdir := filepath.Join(t.TempDir(), "tb")
	runs, err := tracker.WriteTensorBoard(logdir, []*tracker.Sweep{s})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(logdir, filepath.FromSlash(runs[0].Dir), "events.out.tfevents.*"))
	if len(files) != 1 {
		t.Fatalf("event files %v", files)
	}
	orig, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		damage     func([]byte) []byte
	}{
		{"length bit", "length CRC mismatch", func(b []byte) []byte { b[0] ^= 1; return b }},
		{"payload bit", "payload CRC mismatch", func(b []byte) []byte { b[14] ^= 0x10; return b }},
		{"length CRC bit", "length CRC mismatch", func(b []byte) []byte { b[9] ^= 0x80; return b }},
		{"cut", "truncated", func(b []byte) []byte { return b[:len(b)-3] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(files[0], tc.damage(bytes.Clone(orig)), 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(files[0], orig, 0o644)
			_, err := runPython(t, "tfevents_read.py", logdir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("reader on a damaged file: %v, want %q", err, tc.want)
			}
		})
	}
}
