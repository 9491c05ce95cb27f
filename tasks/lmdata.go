package tasks

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"peftbench/lm"
	"peftbench/safetensors"
	"peftbench/tokenizer"
)

// This file holds the lm task's inputs: checkpoint folders, data files
// and their content digests, each read once per (path, size, mtime) in a
// process, so that planning hundreds of trials reads and hashes a file
// once.

// TokenizerFile is the tokenizer a checkpoint folder must hold.
const TokenizerFile = "tokenizer.json"

// maxDataBytes bounds one data file (JSONL or .txt) of the lm task.
const maxDataBytes = 1 << 30

// statKey identifies a file's version: its path, size and modification
// time. A file rewritten in place with the same size within the mtime
// granularity is not noticed; that is the price of not rereading it.
type statKey struct {
	path  string
	size  int64
	mtime time.Time
}

func statOf(path string) (statKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return statKey{}, err
	}
	if st.IsDir() {
		return statKey{}, fmt.Errorf("%s: is a directory", path)
	}
	return statKey{path, st.Size(), st.ModTime()}, nil
}

// memo caches values by a string key for the life of the process.
type memo[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

func (c *memo[V]) get(key string, build func() (V, error)) (V, error) {
	c.mu.Lock()
	defer c.mu.Unlock() // serialises builds: a file is read once
	if v, ok := c.m[key]; ok {
		return v, nil
	}
	v, err := build()
	if err != nil {
		return v, err
	}
	if c.m == nil {
		c.m = map[string]V{}
	}
	c.m[key] = v
	return v, nil
}

func keyOf(ks ...statKey) string {
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "%s\x00%d\x00%d\x00", k.path, k.size, k.mtime.UnixNano())
	}
	return b.String()
}

var fileDigests memo[string]

// digestReads counts the files fileDigest has read (for a test of the
// cache).
var digestReads atomic.Int64

// fileDigest is the hex SHA-256 of a file's bytes, cached by statKey.
func fileDigest(path string) (string, error) {
	k, err := statOf(path)
	if err != nil {
		return "", err
	}
	return fileDigests.get(keyOf(k), func() (string, error) {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		digestReads.Add(1)
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	})
}

// checkpoint is what planning needs of a checkpoint folder: its config,
// its tokenizer and the files whose bytes make it (config.json, every
// weight file, tokenizer.json, in name order).
type checkpoint struct {
	dir   string
	cfg   *lm.Config
	tok   *tokenizer.Tokenizer
	files []string
}

var checkpoints memo[*checkpoint]

// openCheckpoint reads and checks dir without loading its weights: the
// config (lm.ReadConfig: family, architecture), the weight files'
// headers (every shard of an index present; safetensors.OpenModel), the
// tokenizer (tokenizer.Load), whose vocabulary must fit the embedding.
// Cached by the stat of config.json, tokenizer.json and model.safetensors
// (or the index).
func openCheckpoint(dir string) (*checkpoint, error) {
	var keys []statKey
	weights := filepath.Join(dir, safetensors.ModelFile)
	if _, err := os.Stat(weights); err != nil {
		weights = filepath.Join(dir, safetensors.IndexFile)
	}
	for _, f := range []string{filepath.Join(dir, lm.ConfigFile), weights, filepath.Join(dir, TokenizerFile)} {
		k, err := statOf(f)
		if err != nil {
			if _, err := lm.ReadConfig(dir); err != nil {
				return nil, err // the config's own message (no config.json, …)
			}
			if _, err := safetensors.OpenModel(dir); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("lm task: %w", err)
		}
		keys = append(keys, k)
	}
	ck, err := checkpoints.get(keyOf(keys...), func() (*checkpoint, error) {
		cfg, err := lm.ReadConfig(dir)
		if err != nil {
			return nil, err
		}
		st, err := safetensors.OpenModel(dir)
		if err != nil {
			return nil, err
		}
		files := append([]string{cfg.Path, filepath.Join(dir, TokenizerFile)}, st.Shards()...)
		st.Close()
		if filepath.Base(weights) == safetensors.IndexFile {
			files = append(files, weights)
		}
		tok, err := tokenizer.Load(filepath.Join(dir, TokenizerFile))
		if err != nil {
			return nil, err
		}
		if tok.VocabSize() > cfg.Vocab {
			return nil, fmt.Errorf("%s: vocabulary of %d tokens exceeds the %d embedding rows of %s (vocab_size)",
				filepath.Join(dir, TokenizerFile), tok.VocabSize(), cfg.Vocab, cfg.Path)
		}
		slices.Sort(files)
		files = slices.Compact(files)
		return &checkpoint{dir: dir, cfg: cfg, tok: tok, files: files}, nil
	})
	if err != nil {
		return nil, err
	}
	// The shards are checked once per version of the index; one removed
	// since is still refused here, by name.
	for _, f := range ck.files {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("lm task: %w", err)
		}
	}
	return ck, nil
}

// digest is "sha256:<hex>" of the checkpoint's content: the SHA-256 of
// each file's base name and digest, in name order.
func (c *checkpoint) digest() (string, error) {
	h := sha256.New()
	for _, f := range c.files {
		d, err := fileDigest(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s\n", filepath.Base(f), d)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// doc is one document of a data file: Text alone (the loss on every
// token), or Prompt and Completion (the loss on the completion only).
type doc struct {
	Prompt, Text string
	QA           bool // Prompt + Completion (Text holds the completion)
}

var dataFiles memo[[]doc]

// readDocs reads a data file: JSONL, each line an object with a string
// "text", or strings "prompt" and "completion" (blank lines skipped); or,
// for a .txt file, documents separated by blank lines. Errors name the
// file and line.
func readDocs(path string) ([]doc, error) {
	k, err := statOf(path)
	if err != nil {
		return nil, err
	}
	if k.size > maxDataBytes {
		return nil, fmt.Errorf("%s: %d bytes, over the %d-byte limit", path, k.size, maxDataBytes)
	}
	return dataFiles.get(keyOf(k), func() ([]doc, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var docs []doc
		if strings.EqualFold(filepath.Ext(path), ".txt") {
			if !utf8.Valid(data) {
				return nil, fmt.Errorf("%s: not valid UTF-8", path)
			}
			for _, p := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n\n") {
				if p = strings.TrimSpace(p); p != "" {
					docs = append(docs, doc{Text: p})
				}
			}
		} else {
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(nil, maxDataBytes)
			for line := 1; sc.Scan(); line++ {
				b := bytes.TrimSpace(sc.Bytes())
				if len(b) == 0 {
					continue
				}
				var row map[string]json.RawMessage
				if err := json.Unmarshal(b, &row); err != nil {
					return nil, fmt.Errorf("%s:%d: %v", path, line, err)
				}
				str := func(key string) (string, bool, error) {
					raw, ok := row[key]
					if !ok {
						return "", false, nil
					}
					var s string
					if err := json.Unmarshal(raw, &s); err != nil {
						return "", true, fmt.Errorf("%s:%d: %q is not a string", path, line, key)
					}
					return s, true, nil
				}
				text, hasText, err1 := str("text")
				prompt, hasPrompt, err2 := str("prompt")
				comp, hasComp, err3 := str("completion")
				for _, e := range []error{err1, err2, err3} {
					if e != nil {
						return nil, e
					}
				}
				switch {
				case hasText:
					docs = append(docs, doc{Text: text})
				case hasPrompt && hasComp:
					docs = append(docs, doc{Prompt: prompt, Text: comp, QA: true})
				default:
					return nil, fmt.Errorf("%s:%d: no \"text\" field (nor \"prompt\" and \"completion\")", path, line)
				}
			}
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		if len(docs) == 0 {
			return nil, fmt.Errorf("%s: no documents", path)
		}
		return docs, nil
	})
}

// seqRow is one row of a batch: Seq input tokens and, per position, the
// token it should predict (lm.IgnoreIndex where none counts).
type seqRow struct{ ids, labels []int }

// tokenize encodes docs (no special tokens: the post-processor is not
// applied) into (ids, mask) per document, mask true where a token is a
// target: every token of a text, the completion's of a prompt+completion.
// The EOS token, when the tokenizer has one, ends each document and is a
// target.
func tokenize(tok *tokenizer.Tokenizer, path string, docs []doc) ([][]int, [][]bool, error) {
	ids := make([][]int, len(docs))
	mask := make([][]bool, len(docs))
	for i, d := range docs {
		var p []int
		if d.QA {
			var err error
			if p, err = tok.Encode(d.Prompt, false); err != nil {
				return nil, nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
			}
		}
		t, err := tok.Encode(d.Text, false)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		ids[i] = append(p, t...)
		if eos := tok.EOS(); eos >= 0 {
			ids[i] = append(ids[i], eos)
		}
		mask[i] = make([]bool, len(ids[i]))
		for j := len(p); j < len(ids[i]); j++ {
			mask[i][j] = true
		}
	}
	return ids, mask, nil
}

// packRows concatenates the documents and cuts the stream into rows of
// seq inputs, each labelled with the next seq tokens (consecutive rows
// overlap by the one token that is the last label of a row and the first
// input of the next).
func packRows(ids [][]int, mask [][]bool, seq int) []seqRow {
	var s []int
	var m []bool
	for i := range ids {
		s, m = append(s, ids[i]...), append(m, mask[i]...)
	}
	var rows []seqRow
	for lo := 0; lo+seq+1 <= len(s); lo += seq {
		r := seqRow{ids: append([]int(nil), s[lo:lo+seq]...), labels: make([]int, seq)}
		for t := range seq {
			r.labels[t] = lm.IgnoreIndex
			if m[lo+t+1] {
				r.labels[t] = s[lo+t+1]
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// docRows makes one row per document: its first seq tokens (right-padded
// with pad), each labelled with the next token; padding and the last
// token take no part in the loss. A document of one token has no row.
func docRows(ids [][]int, mask [][]bool, seq, pad int) []seqRow {
	var rows []seqRow
	for i, d := range ids {
		if len(d) < 2 {
			continue
		}
		r := seqRow{ids: make([]int, seq), labels: make([]int, seq)}
		for t := range seq {
			r.ids[t], r.labels[t] = pad, lm.IgnoreIndex
			if t < len(d) {
				r.ids[t] = d[t]
			}
			if t+1 < len(d) && mask[i][t+1] {
				r.labels[t] = d[t+1]
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// rowsBatch stacks rows into a Batch.
func rowsBatch(rows []seqRow, seq int) Batch {
	b := Batch{N: len(rows), Seq: seq, IDs: make([]int, 0, len(rows)*seq), Labels: make([]int, 0, len(rows)*seq)}
	for _, r := range rows {
		b.IDs, b.Labels = append(b.IDs, r.ids...), append(b.Labels, r.labels...)
	}
	return b
}
