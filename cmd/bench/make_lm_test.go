package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeLMGolden pins the gpt2 config.json (transformers' to_diff_dict
// keys, sort_keys, indent 2, Python float spelling: 1e-05, 0.1) and a
// 3-shard index (total_size, sorted weight_map, save_pretrained's shard
// names) to golden files. Catches a config key renamed, dropped or
// spelled Go's way (1e-5, 0.00001), and a shard split or index layout
// change.
func TestMakeLMGolden(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gpt2")
	var out, errb bytes.Buffer
	if err := runMakeLM([]string{"--family", "gpt2", "--out", dir, "--shards", "3"}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	for _, g := range []struct{ file, golden string }{
		{"config.json", "make-lm-gpt2-config.json"},
		{"model.safetensors.index.json", "make-lm-gpt2-index.json"},
	} {
		got, err := os.ReadFile(filepath.Join(dir, g.file))
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, g.golden, "bench make-lm --family gpt2 "+g.file, got)
	}
}

// TestMakeLMDeterministic writes every family twice with the same flags
// (sharded, with --data) and compares the folders byte for byte, and
// checks that another seed changes the weights but not the tokenizer.
// Catches map-order iteration in the tokenizer trainer or the JSON
// writers, and a seed that does not reach the weights.
func TestMakeLMDeterministic(t *testing.T) {
	root := t.TempDir()
	read := func(dir string) map[string][]byte {
		m := map[string][]byte{}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			m[e.Name()] = b
		}
		return m
	}
	for _, fam := range []string{"gpt2", "neox", "llama", "qwen2"} {
		var runs []map[string][]byte
		for i, seed := range []string{"7", "7", "8"} {
			dir := filepath.Join(root, fam+string(rune('a'+i)))
			var out, errb bytes.Buffer
			if err := runMakeLM([]string{"--family", fam, "--out", dir, "--seed", seed, "--shards", "2", "--data", "--layers", "1", "--dim", "32", "--heads", "2"}, &out, &errb); err != nil {
				t.Fatalf("%s: %v\n%s", fam, err, errb.String())
			}
			m := read(dir)
			for k, v := range read(dir + "-data") {
				m["data/"+k] = v
			}
			runs = append(runs, m)
		}
		if len(runs[0]) != 12 {
			t.Errorf("%s: %d files, want 12", fam, len(runs[0]))
		}
		for name, b := range runs[0] {
			if !bytes.Equal(b, runs[1][name]) {
				t.Errorf("%s: %s differs between two runs with the same seed", fam, name)
			}
			weights := strings.HasSuffix(name, ".safetensors")
			if same := bytes.Equal(b, runs[2][name]); weights == same && !strings.HasPrefix(name, "data/") {
				t.Errorf("%s: %s: seed 7 and 8 same=%v", fam, name, same)
			}
		}
	}
}

// TestMakeLMErrors: bad flags are usage errors (exit 2), a non-empty
// folder is refused, and nothing is written.
func TestMakeLMErrors(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	for _, c := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"--family", "bert", "--out", filepath.Join(dir, "a")}, true, `--family "bert"`},
		{[]string{"--out", filepath.Join(dir, "a")}, true, "--family and --out are required"},
		{[]string{"--family", "gpt2", "--out", filepath.Join(dir, "a"), "--dtype", "f8"}, true, `--dtype "f8"`},
		{[]string{"--family", "gpt2", "--out", full}, false, "not empty"},
		{[]string{"--family", "llama", "--out", filepath.Join(dir, "a"), "--kv-heads", "3"}, false, "kv-heads 3"},
		{[]string{"--family", "qwen2", "--out", filepath.Join(dir, "a"), "--vocab", "100"}, false, "vocab 100"},
	} {
		var out, errb bytes.Buffer
		err := runMakeLM(c.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one with %q", c.args, err, c.want)
			continue
		}
		if isUsage(err) != c.usage {
			t.Errorf("%v: usage error %v, want %v", c.args, isUsage(err), c.usage)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("a refused make-lm wrote its folder")
	}
}

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}
