package tasks

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"
)

func TestCharVocabRoundTrip(t *testing.T) {
	seen := map[uint8]bool{}
	for c := range 256 {
		id := charID(byte(c))
		if id >= charVocab {
			t.Fatalf("charID(%#x) = %d, outside the vocabulary of %d", c, id, charVocab)
		}
		known := c == '\t' || c == '\n' || (c >= 32 && c <= 126)
		switch {
		case known && charOf(id) != byte(c):
			t.Errorf("charOf(charID(%q)) = %q", byte(c), charOf(id))
		case known && seen[id]:
			t.Errorf("charID(%q) = %d, already taken", byte(c), id)
		case !known && id != charUNK:
			t.Errorf("charID(%#x) = %d, want UNK %d", c, id, charUNK)
		}
		if known {
			seen[id] = true
		}
	}
	if len(seen) != charUNK {
		t.Errorf("%d known characters, want ids 0…%d all used", len(seen), charUNK-1)
	}
}

func TestSplitSource(t *testing.T) {
	for _, tc := range []struct {
		name, src, prose, code string
	}{
		{
			name: "doc comment and license",
			src: "// Copyright 2009 The Go Authors. All rights reserved.\n// Use of this source code.\n\n" +
				"// Package p does\n// things.\n//\n// More here.\npackage p\n",
			prose: "Package p does things.\nMore here.\n",
			code:  "package p\n",
		},
		{
			name:  "directives and preformatted lines",
			src:   "package p\n\n//go:noinline\n// F is f.\n//\n//\tF()\n// +build x\nfunc F() {}\n",
			prose: "F is f.\n",
			code:  "package p\n\nfunc F() {}\n",
		},
		{
			name:  "trailing and block comments",
			src:   "package p\n\nvar x = 1 // one\n/* block\ncomment */\nvar y = \"//not a comment\"\n",
			prose: "",
			code:  "package p\n\nvar x = 1\nvar y = \"//not a comment\"\n",
		},
		{
			name:  "indentation kept, paragraphs split by code",
			src:   "package p\n\nfunc f() {\n\t// a\n\tx := 1\n\t// b\n\t_ = x\n}\n",
			prose: "a\nb\n",
			code:  "package p\n\nfunc f() {\n\tx := 1\n\t_ = x\n}\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prose, code, err := splitSource("p.go", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if string(prose) != tc.prose {
				t.Errorf("prose = %q, want %q", prose, tc.prose)
			}
			if string(code) != tc.code {
				t.Errorf("code = %q, want %q", code, tc.code)
			}
		})
	}
	if _, _, err := splitSource("bad.go", []byte("package p\nvar s = \"unterminated\n")); err == nil {
		t.Error("unterminated string: no error")
	}
}

func TestBuildCorpusSplitsByFile(t *testing.T) {
	fsys := fstest.MapFS{}
	var held, kept string
	for i := 0; held == "" || kept == ""; i++ {
		name := fmt.Sprintf("p/f%d.go", i)
		if heldOut(name) && held == "" {
			held = name
		} else if !heldOut(name) && kept == "" {
			kept = name
		}
	}
	fsys[held] = &fstest.MapFile{Data: []byte("// Held prose.\npackage p\n\nvar h = 1\n")}
	fsys[kept] = &fstest.MapFile{Data: []byte("// Kept prose.\npackage p\n\nvar k = 1\n")}
	fsys["p/x_test.go"] = &fstest.MapFile{Data: []byte("// Test prose.\npackage p\n")}
	c, err := buildCorpus(fsys, []string{"p"})
	if err != nil {
		t.Fatal(err)
	}
	dec := func(ids []uint8) string {
		b := make([]byte, len(ids))
		for i, id := range ids {
			b[i] = charOf(id)
		}
		return string(b)
	}
	for _, tc := range []struct{ what, got, want string }{
		{"held prose", dec(c.heldProse), "Held prose.\n"},
		{"training prose", dec(c.trainProse), "Kept prose.\n"},
		{"held code", dec(c.heldCode), "package p\n\nvar h = 1\n"},
		{"training code", dec(c.trainCode), "package p\n\nvar k = 1\n"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.what, tc.got, tc.want)
		}
	}
	if !slices.Equal(c.heldFiles, []string{held}) || len(c.files) != 2 {
		t.Errorf("files %v, held %v; want %s and %s, held %s", c.files, c.heldFiles, held, kept, held)
	}
	fsys[kept] = &fstest.MapFile{Data: []byte("// Kept prose!\npackage p\n\nvar k = 1\n")}
	c2, err := buildCorpus(fsys, []string{"p"})
	if err != nil {
		t.Fatal(err)
	}
	if c2.fingerprint == c.fingerprint {
		t.Error("fingerprint unchanged after a file changed")
	}
	if _, err := buildCorpus(fsys, []string{"missing"}); err == nil {
		t.Error("missing package: no error")
	}
}

// TestGoCorpusDeterministic builds the corpus from GOROOT twice: the same
// bytes, the same split, and enough text on each side.
func TestGoCorpusDeterministic(t *testing.T) {
	root, err := GOROOT()
	if err != nil {
		t.Fatal(err)
	}
	fsys := os.DirFS(filepath.Join(root, "src"))
	a, err := buildCorpus(fsys, corpusPackages)
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildCorpus(fsys, corpusPackages)
	if err != nil {
		t.Fatal(err)
	}
	if a.fingerprint != b.fingerprint || !slices.Equal(a.heldFiles, b.heldFiles) ||
		!bytes.Equal(a.trainProse, b.trainProse) || !bytes.Equal(a.heldProse, b.heldProse) ||
		!bytes.Equal(a.trainCode, b.trainCode) || !bytes.Equal(a.heldCode, b.heldCode) {
		t.Fatal("two builds of the corpus differ")
	}
	for _, f := range a.files {
		if heldOut(f) != slices.Contains(a.heldFiles, f) {
			t.Errorf("%s: heldOut %v but held files say otherwise", f, heldOut(f))
		}
	}
	for _, s := range []struct {
		name string
		ids  []uint8
		min  int
	}{{"training prose", a.trainProse, 100000}, {"held-out prose", a.heldProse, 10000},
		{"training code", a.trainCode, 100000}, {"held-out code", a.heldCode, 10000}} {
		unk := bytes.Count(s.ids, []byte{charUNK})
		if len(s.ids) < s.min || unk*100 > len(s.ids) {
			t.Errorf("%s: %d characters (want ≥ %d), %d UNK (want < 1%%)", s.name, len(s.ids), s.min, unk)
		}
	}
	t.Logf("%d files (%d held out); prose %d + %d chars, code %d + %d chars",
		len(a.files), len(a.heldFiles), len(a.trainProse), len(a.heldProse), len(a.trainCode), len(a.heldCode))
}
