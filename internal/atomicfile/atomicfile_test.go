package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.bin")
	if err := WriteFile(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	// A failed write leaves the old file and no temporary one.
	boom := errors.New("boom")
	if err := Write(p, func(w io.Writer) error { w.Write([]byte("tw")); return boom }); !errors.Is(err, boom) {
		t.Fatalf("Write: %v, want boom", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Errorf("after a failed write: %q, want the old file", b)
	}
	if err := WriteFiles(dir, []string{"a.bin", "b.bin"}, [][]byte{[]byte("1"), []byte("2")}); err != nil {
		t.Fatal(err)
	}
	es, _ := os.ReadDir(dir)
	if len(es) != 2 {
		t.Errorf("%d entries, want a.bin and b.bin", len(es))
	}
	for _, e := range es {
		if IsTemp(e.Name()) {
			t.Errorf("temporary file left: %s", e.Name())
		}
		if fi, _ := e.Info(); fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", e.Name(), fi.Mode().Perm())
		}
	}
}

// TestWriteFileMode: a script or a program keeps its mode.
func TestWriteFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.sh")
	if err := WriteFileMode(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", fi.Mode().Perm())
	}
}
