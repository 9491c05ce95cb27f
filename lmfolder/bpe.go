package lmfolder

import (
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
)

// corpus is the text the tokenizer is trained on and --data is cut from:
// public-domain prose (the Gettysburg Address, the openings of Pride and
// Prejudice and Alice's Adventures in Wonderland, Carroll's "The Walrus
// and the Carpenter"), a little Python, Go, C and JSON, and digits.
//
//go:embed corpus.txt
var corpus string

// byteToUnicode is GPT-2's bytes_to_unicode: printable bytes map to
// themselves, the others to U+0100 onwards, in this order (which is also
// the order of the first 256 vocabulary entries).
var byteToUnicode, byteOrder = func() ([256]rune, [256]byte) {
	var m [256]rune
	var order [256]byte
	n, k := 0, 0
	printable := func(b int) bool { return b >= '!' && b <= '~' || b >= 0xa1 && b <= 0xac || b >= 0xae && b <= 0xff }
	for b := range 256 {
		if printable(b) {
			m[b] = rune(b)
			order[k] = byte(b)
			k++
		}
	}
	for b := range 256 {
		if !printable(b) {
			m[b] = rune(256 + n)
			n++
			order[k] = byte(b)
			k++
		}
	}
	return m, order
}()

// Pre-tokenizers for training. Go's regexp has no lookahead, so GPT-2's
// \s+(?!\S) branch is left out: training only needs word-like pieces, and
// any merge list gives a valid tokenizer (the family's exact regex goes
// into tokenizer.json).
var (
	gpt2Split  = regexp.MustCompile(`'s|'t|'re|'ve|'m|'ll|'d| ?\pL+| ?\pN+| ?[^\s\pL\pN]+|\s+`)
	llamaSplit = regexp.MustCompile(`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\pL\pN]?\pL+|\pN{1,3}| ?[^\s\pL\pN]+[\r\n]*|\s*[\r\n]+|\s+`)
	qwenSplit  = regexp.MustCompile(`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\pL\pN]?\pL+|\pN| ?[^\s\pL\pN]+[\r\n]*|\s*[\r\n]+|\s+`)
)

// The families' pre-tokenizer regexes as their tokenizer.json files spell
// them (Llama 3; Qwen2 splits digits one by one).
const (
	llama3Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Regex  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// special is an added token.
type special struct {
	id         int
	content    string
	normalized bool
	inVocab    bool // also an entry of model.vocab (GPT-2, NeoX)
}

// bpeTokenizer is a trained byte-level BPE with its family's specials.
type bpeTokenizer struct {
	family   string
	vocab    []string // by id; "" where the id is a special token not in model.vocab
	merges   [][2]string
	specials []special
	bos, eos int
}

// Size is the number of token ids.
func (t *bpeTokenizer) Size() int { return len(t.vocab) }

// trainBPE learns merges on the corpus until the vocabulary, special
// tokens included, has size entries. Ties between equally frequent pairs
// go to the lexicographically smaller pair, so training is deterministic.
func trainBPE(familyName string, size int) (*bpeTokenizer, error) {
	t := &bpeTokenizer{family: familyName}
	var specials []string
	first := 0 // id of the first byte token
	switch familyName {
	case "gpt2":
		specials = []string{"<|endoftext|>"}
	case "neox":
		specials = []string{"<|endoftext|>", "<|padding|>"}
		first = 2
	case "llama":
		specials = []string{"<|begin_of_text|>", "<|end_of_text|>"}
	case "qwen2":
		specials = []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
	default:
		return nil, fmt.Errorf("lmfolder: family %q: no tokenizer", familyName)
	}
	nMerges := size - 256 - len(specials)
	if nMerges < 0 {
		return nil, fmt.Errorf("lmfolder: vocab %d: below the %d byte and special tokens", size, 256+len(specials))
	}
	if first > 0 {
		t.vocab = append(t.vocab, specials...)
	}
	index := map[string]bool{}
	for _, b := range byteOrder {
		s := string(byteToUnicode[b])
		t.vocab = append(t.vocab, s)
		index[s] = true
	}

	split := gpt2Split
	switch familyName {
	case "llama":
		split = llamaSplit
	case "qwen2":
		split = qwenSplit
	}
	// Words as symbol sequences, in first-seen order, with counts.
	count := map[string]int{}
	var order []string
	for _, w := range split.FindAllString(corpus, -1) {
		if count[w] == 0 {
			order = append(order, w)
		}
		count[w]++
	}
	words := make([][]string, len(order))
	freq := make([]int, len(order))
	for i, w := range order {
		for _, b := range []byte(w) {
			words[i] = append(words[i], string(byteToUnicode[b]))
		}
		freq[i] = count[w]
	}
	for added := 0; added < nMerges; {
		pairs := map[[2]string]int{}
		for i, w := range words {
			for j := 0; j+1 < len(w); j++ {
				pairs[[2]string{w[j], w[j+1]}] += freq[i]
			}
		}
		var best [2]string
		bestN := 0
		for p, n := range pairs {
			if n > bestN || n == bestN && (p[0] < best[0] || p[0] == best[0] && p[1] < best[1]) {
				best, bestN = p, n
			}
		}
		if bestN == 0 {
			return nil, fmt.Errorf("lmfolder: vocab %d: the embedded corpus supports only %d merges (vocab %d)", size, added, 256+len(specials)+added)
		}
		t.merges = append(t.merges, best)
		merged := best[0] + best[1]
		if !index[merged] {
			index[merged] = true
			t.vocab = append(t.vocab, merged)
			added++
		}
		for i, w := range words {
			out := w[:0]
			for j := 0; j < len(w); j++ {
				if j+1 < len(w) && w[j] == best[0] && w[j+1] == best[1] {
					out = append(out, merged)
					j++
				} else {
					out = append(out, w[j])
				}
			}
			words[i] = out
		}
	}
	if first == 0 {
		inVocab := familyName == "gpt2"
		for _, s := range specials {
			if inVocab {
				t.vocab = append(t.vocab, s)
			} else {
				t.vocab = append(t.vocab, "")
			}
		}
	}
	for i, s := range specials {
		id := i
		if first == 0 {
			id = len(t.vocab) - len(specials) + i
		}
		t.specials = append(t.specials, special{id: id, content: s,
			normalized: familyName == "gpt2", inVocab: familyName == "gpt2" || familyName == "neox"})
	}
	switch familyName {
	case "gpt2", "neox":
		t.bos, t.eos = t.specials[0].id, t.specials[0].id
	case "llama":
		t.bos, t.eos = t.specials[0].id, t.specials[1].id
	case "qwen2":
		t.bos, t.eos = t.specials[0].id, t.specials[0].id
	}
	return t, nil
}

// byteLevel is a ByteLevel pre-tokenizer, post-processor or decoder.
func byteLevel(prefix, trim, regex bool) obj {
	return obj{{"type", "ByteLevel"}, {"add_prefix_space", prefix}, {"trim_offsets", trim}, {"use_regex", regex}}
}

func split(re string) obj {
	return obj{{"type", "Split"}, {"pattern", obj{{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}}
}

// tokenizerJSON renders tokenizer.json as the tokenizers library saves it,
// with each family's normalizer, pre-tokenizer, post-processor and decoder
// (GPT-2's and Pythia's ByteLevel with its regex; Llama 3's and Qwen2's
// Split regex then ByteLevel without; Llama 3 prepending
// <|begin_of_text|>; NFC for Pythia and Qwen2).
func (t *bpeTokenizer) tokenizerJSON() []byte {
	var added []any
	for _, s := range t.specials {
		added = append(added, obj{{"id", s.id}, {"content", s.content}, {"single_word", false},
			{"lstrip", false}, {"rstrip", false}, {"normalized", s.normalized}, {"special", true}})
	}
	var normalizer, pre, post, dec any
	prefix, suffix := any(""), any("")
	ignoreMerges := false
	var merges []any
	for _, m := range t.merges {
		switch t.family {
		case "qwen2": // newer tokenizers write pairs
			merges = append(merges, []any{m[0], m[1]})
		default:
			merges = append(merges, m[0]+" "+m[1])
		}
	}
	switch t.family {
	case "gpt2":
		pre = byteLevel(false, true, true)
		post = byteLevel(true, false, true)
		dec = byteLevel(true, true, true)
	case "neox":
		normalizer = obj{{"type", "NFC"}}
		pre = byteLevel(false, true, true)
		post = byteLevel(false, true, true)
		dec = byteLevel(false, true, true)
	case "llama":
		pre = obj{{"type", "Sequence"}, {"pretokenizers", []any{split(llama3Regex), byteLevel(false, true, false)}}}
		bos := t.specials[0].content
		tmpl := func(id string, typ int) obj {
			return obj{{"Sequence", obj{{"id", id}, {"type_id", typ}}}}
		}
		sp := func(typ int) obj { return obj{{"SpecialToken", obj{{"id", bos}, {"type_id", typ}}}} }
		post = obj{{"type", "Sequence"}, {"processors", []any{
			byteLevel(true, false, true),
			obj{{"type", "TemplateProcessing"},
				{"single", []any{sp(0), tmpl("A", 0)}},
				{"pair", []any{sp(0), tmpl("A", 0), sp(1), tmpl("B", 1)}},
				{"special_tokens", obj{{bos, obj{{"id", bos}, {"ids", []any{t.bos}}, {"tokens", []string{bos}}}}}}},
		}}}
		dec = byteLevel(true, true, true)
		prefix, suffix = nil, nil
		ignoreMerges = true
	case "qwen2":
		normalizer = obj{{"type", "NFC"}}
		pre = obj{{"type", "Sequence"}, {"pretokenizers", []any{split(qwen2Regex), byteLevel(false, false, false)}}}
		post = byteLevel(false, false, false)
		dec = byteLevel(false, false, false)
	}
	vocab := obj{}
	for id, s := range t.vocab {
		if s != "" {
			vocab = append(vocab, member{s, id})
		}
	}
	model := obj{{"type", "BPE"}, {"dropout", nil}, {"unk_token", nil},
		{"continuing_subword_prefix", prefix}, {"end_of_word_suffix", suffix},
		{"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", ignoreMerges},
		{"vocab", vocab}, {"merges", merges}}
	return serde.marshal(obj{
		{"version", "1.0"}, {"truncation", nil}, {"padding", nil},
		{"added_tokens", added}, {"normalizer", normalizer}, {"pre_tokenizer", pre},
		{"post_processor", post}, {"decoder", dec}, {"model", model},
	}, false)
}

// tokenizerConfigJSON renders tokenizer_config.json as transformers saves
// it for the family's tokenizer class.
func (t *bpeTokenizer) tokenizerConfigJSON(maxLen int) []byte {
	dec := obj{}
	for _, s := range t.specials {
		dec = append(dec, member{strconv.Itoa(s.id), obj{{"content", s.content}, {"lstrip", false},
			{"normalized", s.normalized}, {"rstrip", false}, {"single_word", false}, {"special", true}}})
	}
	c := obj{{"added_tokens_decoder", dec}, {"model_max_length", maxLen}}
	add := func(k string, v any) { c = append(c, member{k, v}) }
	name := func(id int) string {
		for _, s := range t.specials {
			if s.id == id {
				return s.content
			}
		}
		return ""
	}
	switch t.family {
	case "gpt2":
		add("add_bos_token", false)
		add("add_prefix_space", false)
		add("bos_token", name(t.bos))
		add("clean_up_tokenization_spaces", false)
		add("eos_token", name(t.eos))
		add("errors", "replace")
		add("pad_token", nil)
		add("tokenizer_class", "GPT2Tokenizer")
		add("unk_token", name(t.eos))
	case "neox":
		add("add_bos_token", false)
		add("add_eos_token", false)
		add("add_prefix_space", false)
		add("bos_token", name(t.bos))
		add("clean_up_tokenization_spaces", true)
		add("eos_token", name(t.eos))
		add("pad_token", nil)
		add("tokenizer_class", "GPTNeoXTokenizer")
		add("unk_token", name(t.eos))
	case "llama":
		add("bos_token", name(t.bos))
		add("clean_up_tokenization_spaces", true)
		add("eos_token", name(t.eos))
		add("model_input_names", []string{"input_ids", "attention_mask"})
		add("tokenizer_class", "PreTrainedTokenizerFast")
	case "qwen2":
		add("add_prefix_space", false)
		add("additional_special_tokens", []string{"<|im_start|>", "<|im_end|>"})
		add("bos_token", nil)
		add("clean_up_tokenization_spaces", false)
		add("eos_token", name(t.eos))
		add("errors", "replace")
		add("pad_token", name(t.eos))
		add("split_special_tokens", false)
		add("tokenizer_class", "Qwen2Tokenizer")
		add("unk_token", nil)
	}
	return pyTokConfig.marshal(c, true)
}

// decodeBytes maps a byte-level token back to its bytes (for tests).
func decodeBytes(tok string) []byte {
	rev := map[rune]byte{}
	for b, r := range byteToUnicode {
		rev[r] = byte(b)
	}
	var out []byte
	for _, r := range tok {
		out = append(out, rev[r])
	}
	return out
}
