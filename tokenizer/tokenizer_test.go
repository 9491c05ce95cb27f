package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// toy writes a small tokenizer.json: a BPE model over vocab (ids in
// order) and merges, with the other top-level components given as JSON
// (null when empty), and loads it.
type toy struct {
	vocab      []string
	merges     []string
	model      string // extra model fields, e.g. `"byte_fallback":true`
	added      string // the added_tokens array
	normalizer string
	pre        string
	post       string
	decoder    string
}

func (c toy) json() string {
	vocab := map[string]int{}
	for i, v := range c.vocab {
		vocab[v] = i
	}
	vj, _ := json.Marshal(vocab)
	mj, _ := json.Marshal(c.merges)
	or := func(s, d string) string {
		if s == "" {
			return d
		}
		return s
	}
	model := `{"type":"BPE","vocab":` + string(vj) + `,"merges":` + string(mj)
	if c.model != "" {
		model += "," + c.model
	}
	model += "}"
	return `{"version":"1.0","truncation":null,"padding":null,"added_tokens":` + or(c.added, "[]") +
		`,"normalizer":` + or(c.normalizer, "null") + `,"pre_tokenizer":` + or(c.pre, "null") +
		`,"post_processor":` + or(c.post, "null") + `,"decoder":` + or(c.decoder, "null") + `,"model":` + model + `}`
}

func (c toy) load(t *testing.T) *Tokenizer {
	t.Helper()
	tk, err := c.try(t)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func (c toy) try(t *testing.T) (*Tokenizer, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(p, []byte(c.json()), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

// tokens encodes text and returns the token strings.
func tokens(t *testing.T, tk *Tokenizer, text string, special bool) []string {
	t.Helper()
	ids, err := tk.Encode(text, special)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i], _ = tk.Token(id)
	}
	return out
}

// TestMergesByRank catches merges applied in order of appearance in the
// word rather than lowest rank first: "b c" outranks "a b", so "abc" is
// a + bc (by appearance: ab, then abc); in "abcd", "c d" goes first, then
// "a b". Equal ranks merge leftmost first.
func TestMergesByRank(t *testing.T) {
	tk := toy{
		vocab:  []string{"a", "b", "c", "d", "ab", "bc", "cd", "abc", "xx", "x"},
		merges: []string{"c d", "b c", "a b", "ab c", "x x"},
	}.load(t)
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"abc", []string{"a", "bc"}},
		{"abcd", []string{"ab", "cd"}},
		{"bcab", []string{"bc", "ab"}},
		{"xxx", []string{"xx", "x"}},
		{"xxxxx", []string{"xx", "xx", "x"}},
	} {
		if got := tokens(t, tk, c.in, false); !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

// spToy is a SentencePiece-style toy: Metaspace, byte fallback, unk.
func spToy(scheme string) toy {
	vocab := []string{"<unk>", "<s>", "</s>"}
	for b := 0; b < 256; b++ {
		vocab = append(vocab, byteToken(byte(b)))
	}
	vocab = append(vocab, "▁", "a", "b", "▁a", "é")
	return toy{
		vocab:  vocab,
		merges: []string{"▁ a"},
		model:  `"unk_token":"<unk>","byte_fallback":true,"fuse_unk":true`,
		added: `[{"id":0,"content":"<unk>","special":true,"normalized":false},` +
			`{"id":1,"content":"<s>","special":true,"normalized":false},{"id":2,"content":"</s>","special":true,"normalized":false}]`,
		pre:     `{"type":"Metaspace","replacement":"▁","prepend_scheme":"` + scheme + `","split":false}`,
		post:    `{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"pair":[],"special_tokens":{"<s>":{"id":"<s>","ids":[1],"tokens":["<s>"]}}}`,
		decoder: `{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}`,
	}
}

// TestByteFallback catches a missing byte fallback (€ would be <unk>) and
// a decoder that does not join <0xHH> runs back into text.
func TestByteFallback(t *testing.T) {
	tk := spToy("always").load(t)
	got := tokens(t, tk, "a€é", true)
	want := []string{"<s>", "▁a", "<0xE2>", "<0x82>", "<0xAC>", "é"}
	if !slices.Equal(got, want) {
		t.Fatalf("a€é: %q, want %q", got, want)
	}
	ids, _ := tk.Encode("a€é b", false)
	if s, err := tk.Decode(ids); err != nil || s != "a€é b" {
		t.Errorf("Decode = %q, %v; want \"a€é b\"", s, err)
	}
	// Invalid UTF-8 byte runs decode to one U+FFFD per byte.
	if s, _ := tk.Decode([]int{3 + 0xE2, 3 + 0x82, tk.mustID(t, "a")}); s != "\uFFFD\uFFFDa" {
		t.Errorf("Decode of a cut byte run = %q", s)
	}
}

func (t *Tokenizer) mustID(tb testing.TB, s string) int {
	id, ok := t.TokenID(s)
	if !ok {
		tb.Fatalf("no token %q", s)
	}
	return id
}

// TestUnknownFused: without byte fallback, unknown characters become the
// unknown token, fused into one per run with fuse_unk, one each without.
func TestUnknownFused(t *testing.T) {
	for _, fuse := range []bool{true, false} {
		c := toy{vocab: []string{"<unk>", "a"}, model: fmt.Sprintf(`"unk_token":"<unk>","fuse_unk":%v`, fuse)}
		got := tokens(t, c.load(t), "a€€a€", false)
		want := []string{"a", "<unk>", "a", "<unk>"}
		if !fuse {
			want = []string{"a", "<unk>", "<unk>", "a", "<unk>"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("fuse_unk %v: %q, want %q", fuse, got, want)
		}
	}
}

// TestMetaspacePrependScheme catches "first" treated as "always" (or the
// scheme ignored): with "first" only the piece that starts the text gets
// the ▁, not the one after an added token; "never" adds none.
func TestMetaspacePrependScheme(t *testing.T) {
	for _, c := range []struct {
		scheme, in string
		want       []string
	}{
		{"always", "a<s>a", []string{"▁a", "<s>", "▁a"}},
		{"first", "a<s>a", []string{"▁a", "<s>", "a"}},
		{"first", "<s>a", []string{"<s>", "a"}},
		{"never", "a<s>a", []string{"a", "<s>", "a"}},
		{"first", "a a", []string{"▁a", "▁a"}},
	} {
		if got := tokens(t, spToy(c.scheme).load(t), c.in, false); !slices.Equal(got, c.want) {
			t.Errorf("prepend_scheme %s: %q: %q, want %q", c.scheme, c.in, got, c.want)
		}
	}
}

// TestAddedLongestFirst catches added tokens matched shortest-first (or in
// file order): "<|a|>x" wins over "<|a|>" where both match, wherever each
// is listed.
func TestAddedLongestFirst(t *testing.T) {
	tk := toy{
		vocab: []string{"x", "y", "<", "|", ">", "a"},
		added: `[{"id":6,"content":"<|a|>","special":true,"normalized":false},` +
			`{"id":7,"content":"<|a|>x","special":false,"normalized":false}]`,
	}.load(t)
	got := tokens(t, tk, "<|a|>xy<|a|>y<|a|", false)
	want := []string{"<|a|>x", "y", "<|a|>", "y", "<", "|", "a", "|"}
	if !slices.Equal(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
	if tk.VocabSize() != 8 {
		t.Errorf("VocabSize = %d, want 8", tk.VocabSize())
	}
}

// TestAddedFlags is the library's own cases for lstrip, rstrip,
// single_word and normalized (tokenizers' added_vocabulary.rs tests, with
// its Lowercase normalizer): it catches the flags ignored or stripping
// into an earlier match.
func TestAddedFlags(t *testing.T) {
	split := func(tk *Tokenizer, text string) []string {
		var out []string
		for _, seg := range tk.added.split(text, false) {
			s := text[seg.start:seg.end]
			if seg.id >= 0 {
				out = append(out, fmt.Sprintf("%q=%d", s, seg.id))
				continue
			}
			n := tk.norm.normalize(s)
			for _, sub := range tk.added.split(n, true) {
				ss := n[sub.start:sub.end]
				if sub.id >= 0 {
					out = append(out, fmt.Sprintf("%q=%d", ss, sub.id))
				} else {
					out = append(out, fmt.Sprintf("%q", ss))
				}
			}
		}
		return out
	}
	lower := `{"type":"Lowercase"}`
	tk := toy{vocab: []string{"x"}, normalizer: lower, added: `[` +
		`{"id":10,"content":"my","lstrip":true,"rstrip":true,"normalized":true},` +
		`{"id":11,"content":"name","normalized":true},` +
		`{"id":12,"content":"ony","single_word":true,"normalized":true},` +
		`{"id":13,"content":"[CLS]","special":true,"normalized":false},` +
		`{"id":14,"content":"[SEP]","special":true,"normalized":false}]`}.load(t)
	got := split(tk, "[CLS] My name is Anthony [SEP]")
	want := []string{`"[CLS]"=13`, `" my "=10`, `"name"=11`, `" is anthony "`, `"[SEP]"=14`}
	if !slices.Equal(got, want) {
		t.Errorf("options: %q, want %q", got, want)
	}

	tk = toy{vocab: []string{"x"}, normalizer: lower,
		added: `[{"id":1,"content":"<mask>","single_word":true,"normalized":true}]`}.load(t)
	got = split(tk, "<mask> My name <mask> A<mask> <mask>ony <mask>")
	want = []string{`"<mask>"=1`, `" my name "`, `"<mask>"=1`, `" a<mask> <mask>ony "`, `"<mask>"=1`}
	if !slices.Equal(got, want) {
		t.Errorf("single_word: %q, want %q", got, want)
	}
	got = split(tk, "<mask>, <mask>- ◌̰<mask>")
	want = []string{`"<mask>"=1`, `", "`, `"<mask>"=1`, `"- ◌̰<mask>"`}
	if !slices.Equal(got, want) {
		t.Errorf("single_word, unicode: %q, want %q", got, want)
	}

	tk = toy{vocab: []string{"x"}, normalizer: lower,
		added: `[{"id":1,"content":"<mask>","single_word":true,"lstrip":true,"rstrip":true,"normalized":true}]`}.load(t)
	got = split(tk, "Hi <mask> there\t<mask>\t<mask>\u2000")
	want = []string{`"hi"`, `" <mask> "=1`, `"there"`, `"\t<mask>\t"=1`, `"<mask>\u2000"=1`}
	if !slices.Equal(got, want) {
		t.Errorf("lstrip/rstrip: %q, want %q", got, want)
	}
}

// TestGPT2Whitespace catches the GPT-2 pattern without its \s+(?!\S)
// alternative (and the same in the Llama 3 and Qwen patterns): a run of
// spaces before a word leaves its last space to the word.
func TestGPT2Whitespace(t *testing.T) {
	llama3 := `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen := strings.Replace(llama3, `\p{N}{1,3}`, `\p{N}`, 1)
	find := func(m matcher, s string) []string {
		var out []string
		m.find(s, func(a, b int) { out = append(out, s[a:b]) })
		return out
	}
	for _, c := range []struct {
		pattern, in string
		want        []string
	}{
		{gpt2Pattern, "a   b", []string{"a", "  ", " b"}},
		{gpt2Pattern, "a \n b  ", []string{"a", " \n", " b", "  "}},
		{gpt2Pattern, "it's IT'S 12345 x!!", []string{"it", "'s", " IT", "'", "S", " 12345", " x", "!!"}},
		{llama3, "a   b", []string{"a", "  ", " b"}},
		{llama3, "IT'S 12345\r\n\r\n  x", []string{"IT", "'S", " ", "123", "45", "\r\n\r\n", " ", " x"}},
		{qwen, "a   b 123", []string{"a", "  ", " b", " ", "1", "2", "3"}},
		{qwen, "x  \n\ty", []string{"x", "  \n", "\ty"}},
	} {
		m, err := parsePattern("test", "pattern", json.RawMessage(fmt.Sprintf(`{"Regex":%q}`, c.pattern)))
		if c.pattern == gpt2Pattern {
			m, err = gpt2Matcher(), nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := find(m, c.in); !slices.Equal(got, c.want) {
			t.Errorf("%.20s…: %q: %q, want %q", c.pattern, c.in, got, c.want)
		}
	}
}

// TestSplitBehaviors covers the Split behaviors and invert on a literal
// pattern (the library's own normalizer.rs cases), and Digits.
func TestSplitBehaviors(t *testing.T) {
	ps := []piece{{s: "The-final--countdown", first: true}}
	for _, c := range []struct {
		b      splitBehavior
		invert bool
		want   []string
	}{
		{removed, false, []string{"The", "final", "countdown"}},
		{isolated, false, []string{"The", "-", "final", "-", "-", "countdown"}},
		{mergedWithPrevious, false, []string{"The-", "final-", "-", "countdown"}},
		{mergedWithNext, false, []string{"The", "-final", "-", "-countdown"}},
		{contiguous, false, []string{"The", "-", "final", "--", "countdown"}},
	} {
		var got []string
		for _, p := range splitPieces(slices.Clone(ps), literalMatcher("-"), c.b, c.invert) {
			got = append(got, p.s)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("behavior %d: %q, want %q", c.b, got, c.want)
		}
	}
	var got []string
	for _, p := range (digitsPre{individual: true}).preTokenize([]piece{{s: "a123b٣"}}) {
		got = append(got, p.s)
	}
	if want := []string{"a", "1", "2", "3", "b", "٣"}; !slices.Equal(got, want) {
		t.Errorf("Digits individual: %q, want %q", got, want)
	}
	got = nil
	for _, p := range (digitsPre{}).preTokenize([]piece{{s: "a123b"}}) {
		got = append(got, p.s)
	}
	if want := []string{"a", "123", "b"}; !slices.Equal(got, want) {
		t.Errorf("Digits: %q, want %q", got, want)
	}
}

// TestRefused: a file this package cannot reproduce is refused at Load,
// the error naming the file and the JSON path.
func TestRefused(t *testing.T) {
	base := toy{vocab: []string{"a", "b", "ab"}, merges: []string{"a b"}}
	for _, c := range []struct {
		name string
		edit func(*toy)
		raw  string // replaces the whole file when set
		want string
	}{
		{"normalizer", func(c *toy) { c.normalizer = `{"type":"BertNormalizer"}` }, "", `normalizer.type: "BertNormalizer": not supported`},
		{"nested normalizer", func(c *toy) {
			c.normalizer = `{"type":"Sequence","normalizers":[{"type":"NFC"},{"type":"StripAccents"}]}`
		}, "", `normalizer.normalizers[1].type: "StripAccents": not supported`},
		{"pre-tokenizer", func(c *toy) { c.pre = `{"type":"Whitespace"}` }, "", `pre_tokenizer.type: "Whitespace": not supported`},
		{"split behavior", func(c *toy) { c.pre = `{"type":"Split","pattern":{"String":" "},"behavior":"Weird","invert":false}` }, "", `pre_tokenizer.behavior: "Weird": not supported`},
		{"bad regex", func(c *toy) { c.pre = `{"type":"Split","pattern":{"Regex":"(a"},"behavior":"Isolated","invert":false}` }, "", `pre_tokenizer.pattern.Regex`},
		{"unknown option", func(c *toy) { c.pre = `{"type":"ByteLevel","add_prefix_space":false,"shiny":true}` }, "", `pre_tokenizer.shiny: option of ByteLevel not supported`},
		{"decoder", func(c *toy) { c.decoder = `{"type":"WordPiece","prefix":"##"}` }, "", `decoder.type: "WordPiece": not supported`},
		{"post-processor", func(c *toy) { c.post = `{"type":"Mystery"}` }, "", `post_processor.type: "Mystery": not supported`},
		{"dropout", func(c *toy) { c.model = `"dropout":0.1` }, "", `model.dropout: 0.1`},
		{"unk not in vocab", func(c *toy) { c.model = `"unk_token":"<unk>"` }, "", `model.unk_token: "<unk>" not in the vocabulary`},
		{"merge not in vocab", func(c *toy) { c.merges = []string{"a c"} }, "", `model.merges[0]: "c" not in the vocabulary`},
		{"merged not in vocab", func(c *toy) { c.merges = []string{"b a"} }, "", `model.merges[0]: merged token "ba" not in the vocabulary`},
		{"added id clash", func(c *toy) { c.added = `[{"id":0,"content":"zz","special":true}]` }, "", `added_tokens[0]: token "zz": id 0 is the vocabulary's "a"`},
		{"model type", nil, `{"model":{"type":"Unigram","vocab":[]}}`, `model.type: "Unigram": not supported`},
		{"truncation", nil, `{"truncation":{"max_length":5},"model":{"type":"BPE","vocab":{},"merges":[]}}`, `truncation: not supported`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "tokenizer.json")
			doc := c.raw
			if doc == "" {
				tc := base
				c.edit(&tc)
				doc = tc.json()
			}
			if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("Load: %v; want an error naming %s and %q", err, p, c.want)
			}
		})
	}
}

// TestAddedIDClash: an added token whose id is another vocabulary entry's
// is refused.
func TestAddedIDClash(t *testing.T) {
	_, err := toy{vocab: []string{"a", "b"}, added: `[{"id":0,"content":"b","special":true}]`}.try(t)
	if err == nil || !strings.Contains(err.Error(), `token "b" has id 0 but the vocabulary gives it 1`) {
		t.Fatalf("Load: %v", err)
	}
}

// TestBOSEOS: tokenizer_config.json beside the file decides BOS and EOS
// (strings, AddedToken objects, null); without one, the template's
// special tokens do.
func TestBOSEOS(t *testing.T) {
	c := spToy("first")
	dir := t.TempDir()
	p := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(p, []byte(c.json()), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(name string, bos, eos int) {
		t.Helper()
		tk, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if tk.BOS() != bos || tk.EOS() != eos {
			t.Errorf("%s: BOS, EOS = %d, %d; want %d, %d", name, tk.BOS(), tk.EOS(), bos, eos)
		}
	}
	check("template", 1, -1)
	cfg := filepath.Join(dir, "tokenizer_config.json")
	os.WriteFile(cfg, []byte(`{"bos_token":{"content":"<s>","lstrip":false},"eos_token":"</s>"}`), 0o644)
	check("config", 1, 2)
	os.WriteFile(cfg, []byte(`{"bos_token":null,"eos_token":"</s>"}`), 0o644)
	check("config null", -1, 2)
	os.WriteFile(cfg, []byte(`{"eos_token":"<nope>"}`), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), `eos_token "<nope>"`) {
		t.Errorf("unknown eos_token: %v", err)
	}
}

// TestEncodeDecodeErrors: invalid UTF-8 in, unknown ids out.
func TestEncodeDecodeErrors(t *testing.T) {
	tk := spToy("always").load(t)
	if _, err := tk.Encode("a\xffb", false); err == nil {
		t.Error("Encode accepted invalid UTF-8")
	}
	if _, err := tk.Decode([]int{0, 9999}); err == nil || !strings.Contains(err.Error(), "id 9999 at position 1") {
		t.Errorf("Decode: %v", err)
	}
	if ids, err := tk.Encode("", true); err != nil || !reflect.DeepEqual(ids, []int{1}) {
		t.Errorf("Encode(\"\", true) = %v, %v; want [1]", ids, err)
	}
}
