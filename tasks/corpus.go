package tasks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/scanner"
	"go/token"
	"hash/fnv"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// corpusPackages are the standard-library packages whose sources make the
// text-code corpus: prose from their comments, code from the rest. The
// list is part of the corpus recipe; changing it changes the fingerprint.
var corpusPackages = []string{
	"bufio", "bytes", "container/heap", "container/list", "container/ring",
	"encoding/base64", "encoding/csv", "encoding/hex", "errors", "flag", "fmt",
	"io", "maps", "math", "path", "regexp", "slices", "sort", "strconv",
	"strings", "sync", "text/tabwriter", "time", "unicode/utf8",
}

// corpusVersion versions the extraction rules below; it enters the
// corpus fingerprint.
const corpusVersion = 1

// Character vocabulary: '\t' → 0, '\n' → 1, printable ASCII ' '…'~'
// (32…126) → 2…96, any other byte → charUNK.
const (
	charUNK   = 97
	charVocab = 98
)

// charID returns the vocabulary id of byte c.
func charID(c byte) uint8 {
	switch {
	case c == '\t':
		return 0
	case c == '\n':
		return 1
	case c >= 32 && c <= 126:
		return c - 30
	}
	return charUNK
}

// charOf returns the byte of id: the inverse of charID, with 0 for charUNK.
func charOf(id uint8) byte {
	switch {
	case id == 0:
		return '\t'
	case id == 1:
		return '\n'
	case id < charUNK:
		return id + 30
	}
	return 0
}

// encodeChars maps s to vocabulary ids.
func encodeChars(s []byte) []uint8 {
	ids := make([]uint8, len(s))
	for i, c := range s {
		ids[i] = charID(c)
	}
	return ids
}

// corpus is the text-code corpus: prose and code, each split by file into
// a training stream and a held-out stream of vocabulary ids.
type corpus struct {
	trainProse, heldProse []uint8
	trainCode, heldCode   []uint8
	files, heldFiles      []string // relative paths, sorted
	// fingerprint is the SHA-256 of the extraction version, the package
	// list, and every file's path and contents.
	fingerprint string
}

// heldOut reports whether the file at rel (slash-separated, relative to
// GOROOT/src) is held out: FNV-1a 32 of rel is 0 mod 10.
func heldOut(rel string) bool {
	h := fnv.New32a()
	h.Write([]byte(rel))
	return h.Sum32()%10 == 0
}

// buildCorpus reads the non-test .go files of pkgs from fsys (rooted at
// GOROOT/src), in sorted path order, and splits each into prose and code
// (see splitSource). A file's prose and code go to the held-out streams if
// heldOut(path), else to the training streams; files are concatenated in
// order, each ending with a newline.
func buildCorpus(fsys fs.FS, pkgs []string) (*corpus, error) {
	var files []string
	for _, p := range pkgs {
		ents, err := fs.ReadDir(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("tasks: text-code corpus: %w", err)
		}
		for _, e := range ents {
			n := e.Name()
			if e.Type().IsRegular() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
				files = append(files, path.Join(p, n))
			}
		}
	}
	slices.Sort(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("tasks: text-code corpus: no Go files in %v", pkgs)
	}
	h := sha256.New()
	fmt.Fprintf(h, "text-code corpus v%d\n%s\n", corpusVersion, strings.Join(pkgs, " "))
	var c corpus
	var tp, hp, tc, hc []byte
	for _, f := range files {
		src, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("tasks: text-code corpus: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(src))
		h.Write(src)
		prose, code, err := splitSource(f, src)
		if err != nil {
			return nil, err
		}
		if heldOut(f) {
			hp, hc = append(hp, prose...), append(hc, code...)
			c.heldFiles = append(c.heldFiles, f)
		} else {
			tp, tc = append(tp, prose...), append(tc, code...)
		}
	}
	c.files = files
	c.trainProse, c.heldProse = encodeChars(tp), encodeChars(hp)
	c.trainCode, c.heldCode = encodeChars(tc), encodeChars(hc)
	c.fingerprint = hex.EncodeToString(h.Sum(nil))
	return &c, nil
}

// splitSource splits Go source into prose and code, using go/scanner to
// find the comments (so "//" inside strings stays code).
//
// Prose is the text of the // comments that are alone on their line,
// without the marker and trimmed, tabs inside made spaces (so prose has
// no tab); consecutive lines are joined with spaces into a paragraph,
// which ends at a blank comment line, at code or at a non-adjacent
// comment, and each paragraph is one line of prose. Left out are
// directives (//go:…, //line, //export, // +build), preformatted lines
// (indented by a tab or two spaces after the marker: code examples),
// paragraphs starting with "Copyright" (license headers), /* */ comments
// and comments after code.
//
// Code is the source with every comment removed, trailing blanks trimmed,
// and lines left empty by the removal dropped (blank lines of the source
// stay); indentation is kept as it is (tabs).
func splitSource(name string, src []byte) (prose, code []byte, err error) {
	fset := token.NewFileSet()
	file := fset.AddFile(name, -1, len(src))
	var s scanner.Scanner
	var serr error
	s.Init(file, src, func(pos token.Position, msg string) {
		if serr == nil {
			serr = fmt.Errorf("tasks: text-code corpus: %s: %s", pos, msg)
		}
	}, scanner.ScanComments)
	type span struct{ lo, hi int }
	var comments []span
	var para []string
	lastLine := -1
	flush := func() {
		if len(para) > 0 && !strings.HasPrefix(para[0], "Copyright") {
			prose = append(prose, strings.Join(para, " ")...)
			prose = append(prose, '\n')
		}
		para = para[:0]
	}
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok != token.COMMENT {
			continue
		}
		off := file.Offset(pos)
		// The end comes from src, not len(lit): the scanner drops
		// carriage returns from comment text.
		end := len(src)
		if strings.HasPrefix(lit, "//") {
			if i := bytes.IndexByte(src[off:], '\n'); i >= 0 {
				end = off + i
			}
		} else if i := bytes.Index(src[off+2:], []byte("*/")); i >= 0 {
			end = off + 2 + i + 2
		}
		comments = append(comments, span{off, end})
		line := file.Line(pos)
		lineStart := off
		for lineStart > 0 && src[lineStart-1] != '\n' {
			lineStart--
		}
		alone := strings.TrimLeft(string(src[lineStart:off]), " \t") == ""
		if !alone || !strings.HasPrefix(lit, "//") || line != lastLine+1 {
			flush()
		}
		lastLine = line
		if !alone || !strings.HasPrefix(lit, "//") {
			lastLine = -1
			continue
		}
		text := strings.TrimSuffix(lit[2:], "\r")
		switch {
		case isDirective(text):
			flush()
		case strings.TrimSpace(text) == "":
			flush()
		case strings.HasPrefix(text, "\t"), strings.HasPrefix(text, "  "):
			flush() // preformatted: a code example or a table
		default:
			para = append(para, strings.ReplaceAll(strings.TrimSpace(text), "\t", " "))
		}
	}
	flush()
	if serr != nil {
		return nil, nil, serr
	}
	// Code: blank out the comments, then keep the lines that are not
	// left empty by it.
	stripped := make([]byte, 0, len(src))
	prev := 0
	for _, c := range comments {
		stripped = append(stripped, src[prev:c.lo]...)
		// A removed comment that spans lines keeps its line breaks, so
		// that every line stays paired with its source line below.
		for _, b := range src[c.lo:c.hi] {
			if b == '\n' {
				stripped = append(stripped, '\n')
			}
		}
		prev = c.hi
	}
	stripped = append(stripped, src[prev:]...)
	srcLines := strings.Split(string(src), "\n")
	for i, l := range strings.Split(string(stripped), "\n") {
		l = strings.TrimRight(l, " \t\r")
		if l == "" && strings.TrimSpace(srcLines[i]) != "" {
			continue // only a comment was here
		}
		code = append(code, l...)
		code = append(code, '\n')
	}
	// Drop the blank lines a file starts with (where its license header
	// was), and its trailing newlines but one.
	for len(code) > 0 && code[0] == '\n' {
		code = code[1:]
	}
	for len(code) >= 2 && code[len(code)-1] == '\n' && code[len(code)-2] == '\n' {
		code = code[:len(code)-1]
	}
	return prose, code, nil
}

// isDirective reports whether the text of a // comment (after the "//")
// is a tool directive rather than prose.
func isDirective(text string) bool {
	if strings.HasPrefix(text, "go:") || strings.HasPrefix(text, "line ") || strings.HasPrefix(text, "export ") {
		return true
	}
	return strings.HasPrefix(strings.TrimSpace(text), "+build")
}

// GOROOT returns the root of the Go installation whose standard library
// text-code reads: runtime.GOROOT() when it holds a src folder, else
// $GOROOT, else the output of `go env GOROOT`.
func GOROOT() (string, error) {
	has := func(d string) bool {
		if d == "" {
			return false
		}
		fi, err := os.Stat(filepath.Join(d, "src", "fmt"))
		return err == nil && fi.IsDir()
	}
	//lint:ignore SA1019 runtime.GOROOT is the first place to look; the others follow.
	if d := runtime.GOROOT(); has(d) {
		return d, nil
	}
	if d := os.Getenv("GOROOT"); has(d) {
		return d, nil
	}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("tasks: text-code: no Go installation with sources found (runtime.GOROOT, $GOROOT, `go env GOROOT`); set GOROOT to one")
}

var goCorpus struct {
	once sync.Once
	c    *corpus
	err  error
}

// loadGoCorpus builds the corpus from GOROOT once per process.
func loadGoCorpus() (*corpus, error) {
	goCorpus.once.Do(func() {
		root, err := GOROOT()
		if err != nil {
			goCorpus.err = err
			return
		}
		goCorpus.c, goCorpus.err = buildCorpus(os.DirFS(filepath.Join(root, "src")), corpusPackages)
	})
	return goCorpus.c, goCorpus.err
}
