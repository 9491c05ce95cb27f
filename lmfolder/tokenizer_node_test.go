package lmfolder

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// NodeModulesEnv names a node_modules folder holding @huggingface/tokenizers
// (.ci/run installs it with npm install --prefix .cache/npm); unset, the
// tests look in the repository's .cache/npm/node_modules.
const NodeModulesEnv = "PEFTBENCH_NODE_MODULES"

// nodeTokenizers returns node's path and the @huggingface/tokenizers
// package folder, or skips the test saying what is missing.
func nodeTokenizers(t *testing.T) (string, string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node: the tokenizer.json reference check skips (install nodejs)")
	}
	mods := os.Getenv(NodeModulesEnv)
	if mods == "" {
		mods = filepath.Join("..", ".cache", "npm", "node_modules")
	}
	pkg, _ := filepath.Abs(filepath.Join(mods, "@huggingface", "tokenizers"))
	if _, err := os.Stat(filepath.Join(pkg, "package.json")); err != nil {
		t.Skipf("no %s: the tokenizer.json reference check skips (npm install --prefix .cache/npm @huggingface/tokenizers@0.2.0, as .ci/run does)", pkg)
	}
	return node, pkg
}

// nodeEncode loads each folder's tokenizer.json and tokenizer_config.json
// with @huggingface/tokenizers and prints, per folder and text, the ids
// with special tokens added, and the decoding of the ids with special
// tokens skipped.
const nodeEncode = `
const { Tokenizer } = require(process.env.HF_TOKENIZERS);
const fs = require("fs");
const [texts, ...dirs] = process.argv.slice(1);
const samples = JSON.parse(fs.readFileSync(texts, "utf8"));
const out = {};
for (const dir of dirs) {
  const tj = JSON.parse(fs.readFileSync(dir + "/tokenizer.json", "utf8"));
  const tc = JSON.parse(fs.readFileSync(dir + "/tokenizer_config.json", "utf8"));
  const tok = new Tokenizer(tj, tc);
  out[dir] = samples.map((s) => {
    const ids = tok.encode(s).ids.map(Number);
    return { ids, decoded: tok.decode(ids, { skip_special_tokens: true }) };
  });
}
console.log(JSON.stringify(out));
`

// tokenizerSamples mix prose, contractions, code, digits, whitespace runs,
// accents, CJK and emoji (all NFC, as NFC-normalizing tokenizers need).
var tokenizerSamples = []string{
	"It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
	"They're sure it'll rain; we'd rather stay, and you've said I'm right.",
	"def add(a, b):\n    return a + b\n\n\tfor i in range(10):  print(i)",
	"In 2024 the town had 10,482 people; 3.14159 and $19.99 and 1/2.",
	"Whitespace   runs\n\n\n  and trailing spaces   ",
	"Café déjà vu — naïve façade. 中文字符 日本語 한국어 😀🎉 ∑x²",
	"Alice was beginning to get very tired of sitting by her sister on the bank",
}

// TestTokenizerNode loads every family's tokenizer.json with Hugging Face's
// own JavaScript implementation and checks: it loads; decode(encode(x)) ==
// x for mixed text; every id is below the embedding's rows and, except the
// special ones, below the BPE vocabulary; Llama 3 prepends
// <|begin_of_text|> and the others add nothing; an <|endoftext|>-style
// special token in the text is one id; and the merges apply (the corpus
// sentence takes well under one token per byte). Catches merges written
// in an order or form the library cannot load, a token missing from the
// vocabulary, a wrong byte alphabet (round trip fails), a wrong BOS
// template or special-token id, and merges that never fire.
func TestTokenizerNode(t *testing.T) {
	node, pkg := nodeTokenizers(t)
	root := t.TempDir()
	var dirs []string
	specs := map[string]Spec{}
	toks := map[string]*bpeTokenizer{}
	for _, fam := range Families {
		dir := filepath.Join(root, fam)
		spec := Spec{Family: fam, Seed: 3, Layers: 1, Dim: 32, Heads: 2}
		if fam == "llama" || fam == "qwen2" {
			spec.KVHeads = 1
		}
		_, s, err := Write(dir, spec)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := trainBPE(fam, s.Vocab)
		if err != nil {
			t.Fatal(err)
		}
		dirs, specs[dir], toks[dir] = append(dirs, dir), s, tok
	}
	samples := append([]string{}, tokenizerSamples...)
	// A special token inside the text: the family's end-of-text token.
	eot := map[string]string{"gpt2": "<|endoftext|>", "neox": "<|endoftext|>", "llama": "<|end_of_text|>", "qwen2": "<|endoftext|>"}
	textsPath := filepath.Join(root, "texts.json")
	b, _ := json.Marshal(samples)
	os.WriteFile(textsPath, b, 0o644)
	cmd := exec.Command(node, append([]string{"-e", nodeEncode, textsPath}, dirs...)...)
	cmd.Env = append(os.Environ(), "HF_TOKENIZERS="+pkg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got map[string][]struct {
		IDs     []int `json:"ids"`
		Decoded string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output: %v\n%s", err, out)
	}
	for _, dir := range dirs {
		s, tok := specs[dir], toks[dir]
		fam := s.Family
		for i, r := range got[dir] {
			text := samples[i]
			if r.Decoded != text {
				t.Errorf("%s: decode(encode(%q)) = %q", fam, text, r.Decoded)
			}
			ids := r.IDs
			if fam == "llama" {
				if len(ids) == 0 || ids[0] != tok.bos {
					t.Errorf("llama: %q: ids %v do not start with <|begin_of_text|> %d", text, ids, tok.bos)
					continue
				}
				ids = ids[1:]
			}
			for _, id := range ids {
				if id < 0 || id >= s.Rows() || tok.vocab[id] == "" || isSpecial(tok, id) {
					t.Errorf("%s: %q: id %d outside the BPE vocabulary (rows %d)", fam, text, id, s.Rows())
					break
				}
			}
			if i == 0 && 2*len(ids) > len(text) {
				t.Errorf("%s: %q: %d tokens for %d bytes: the merges do not apply", fam, text, len(ids), len(text))
			}
		}
	}
	// Special token as one id, checked in a second, small run.
	for _, dir := range dirs {
		fam := specs[dir].Family
		text := "Hello" + eot[fam] + "world"
		ids := encodeNode(t, node, pkg, dir, text)
		tok := toks[dir]
		want := -1
		for _, sp := range tok.specials {
			if sp.content == eot[fam] {
				want = sp.id
			}
		}
		if want < 0 || !slices.Contains(ids, want) {
			t.Errorf("%s: %q: ids %v lack %s = %d", fam, text, ids, eot[fam], want)
		}
	}
}

func isSpecial(tok *bpeTokenizer, id int) bool {
	for _, s := range tok.specials {
		if s.id == id {
			return true
		}
	}
	return false
}

// encodeNode encodes one text with the folder's tokenizer in node.
func encodeNode(t *testing.T, node, pkg, dir, text string) []int {
	t.Helper()
	js := `const { Tokenizer } = require(process.env.HF_TOKENIZERS); const fs = require("fs");
const d = process.argv[1];
const tok = new Tokenizer(JSON.parse(fs.readFileSync(d + "/tokenizer.json", "utf8")), JSON.parse(fs.readFileSync(d + "/tokenizer_config.json", "utf8")));
console.log(JSON.stringify(tok.encode(process.argv[2]).ids.map(Number)));`
	cmd := exec.Command(node, "-e", js, dir, text)
	cmd.Env = append(os.Environ(), "HF_TOKENIZERS="+pkg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var ids []int
	if err := json.Unmarshal(out, &ids); err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	return ids
}
