// Package tokenizer reads a Hugging Face tokenizer.json and encodes and
// decodes text exactly as the Rust tokenizers library does for the files it
// supports: byte-level BPE (GPT-2, Pythia, SmolLM2, Qwen2/2.5/3, Llama 3)
// and SentencePiece-style BPE with Metaspace and byte fallback (Llama 2,
// Mistral, TinyLlama). A file using a component or option it cannot
// reproduce is refused at Load with the file and the JSON path named; it
// never approximates.
//
// The pipeline is the library's: added tokens are split out of the raw text
// (longest match first), the remaining pieces are normalized, then split on
// added tokens that match normalized text, pre-tokenized into words, and
// each word is turned into IDs by the BPE model (merges by rank, results
// cached per word); Encode with addSpecial applies the post-processor (e.g.
// Llama 2's leading <s>). Decode maps IDs back to token strings and runs
// the decoder chain.
package tokenizer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// Tokenizer is one loaded tokenizer.json. It is safe for concurrent use.
type Tokenizer struct {
	path   string
	norm   normalizer     // nil: none
	pre    []preTokenizer // applied in order; empty: the whole piece is one word
	model  *bpeModel
	post   []postStep // the post-processor's steps for one sequence
	dec    []decoder  // nil: tokens joined with spaces
	added  addedVocab
	vocab  int      // max id + 1
	tokens []string // id → token string ("" where no token has the id)
	hasTok []bool
	bos    int
	eos    int
}

// Load reads a tokenizer.json (and tokenizer_config.json or
// special_tokens_map.json beside it, for BOS and EOS, when present).
// Every component, option and token the file uses must be one this package
// reproduces exactly; otherwise the error names the file and the JSON path.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := parse(path, data)
	if err != nil {
		return nil, err
	}
	if err := t.resolveBOSEOS(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return t, nil
}

// VocabSize is the number of IDs the tokenizer can produce: the largest ID
// of the model's vocabulary and the added tokens, plus one. An embedding
// matrix needs at least this many rows.
func (t *Tokenizer) VocabSize() int { return t.vocab }

// TokenID is the ID of a token string (added tokens first, then the
// model's vocabulary, as the library resolves it).
func (t *Tokenizer) TokenID(tok string) (int, bool) {
	if id, ok := t.added.byContent[tok]; ok {
		return id, true
	}
	id, ok := t.model.vocab[tok]
	return int(id), ok
}

// Token is the string of an ID, false when no token has it.
func (t *Tokenizer) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.tokens) || !t.hasTok[id] {
		return "", false
	}
	return t.tokens[id], true
}

// BOS is the beginning-of-sequence token's ID, -1 when the tokenizer has
// none. It comes from tokenizer_config.json (or special_tokens_map.json)
// beside the file when present, else from the post-processor's template
// (a special token before the sequence).
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the end-of-sequence token's ID, -1 when the tokenizer has none:
// tokenizer_config.json (or special_tokens_map.json) when present, else a
// special token after the sequence in the post-processor's template, else
// the added special token <|endoftext|> (GPT-2, GPT-NeoX and Qwen's
// convention).
func (t *Tokenizer) EOS() int { return t.eos }

// Encode turns text into token IDs. addSpecial applies the post-processor
// as the file defines it (Llama 2's TemplateProcessing adds <s>; GPT-2's
// and Qwen's ByteLevel post-processor adds nothing); added and special
// tokens written in the text are always recognised, as the library does by
// default. The text must be valid UTF-8.
func (t *Tokenizer) Encode(text string, addSpecial bool) ([]int, error) {
	if !utf8.ValidString(text) {
		return nil, errors.New("tokenizer: Encode: text is not valid UTF-8")
	}
	var ids []int
	if addSpecial {
		for _, s := range t.post {
			if !s.seq {
				ids = append(ids, s.ids...)
				continue
			}
			var err error
			if ids, err = t.encodeText(ids, text); err != nil {
				return nil, err
			}
		}
		if len(t.post) > 0 {
			return ids, nil
		}
	}
	return t.encodeText(ids, text)
}

// encodeText appends the IDs of text without any post-processing.
func (t *Tokenizer) encodeText(ids []int, text string) (_ []int, err error) {
	defer func() {
		if r := recover(); r != nil {
			re, ok := r.(regexError)
			if !ok {
				panic(r)
			}
			err = re.err
		}
	}()
	for _, seg := range t.added.split(text, false) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			continue
		}
		norm := text[seg.start:seg.end]
		if t.norm != nil {
			norm = t.norm.normalize(norm)
		}
		for _, sub := range t.added.split(norm, true) {
			if sub.id >= 0 {
				ids = append(ids, sub.id)
				continue
			}
			// The piece starts the original text only when its segment does
			// and it is the first of the normalized segment (Metaspace's
			// prepend_scheme "first" depends on it).
			words := []piece{{s: norm[sub.start:sub.end], first: seg.start == 0 && sub.start == 0}}
			if words[0].s == "" {
				continue
			}
			for _, p := range t.pre {
				words = p.preTokenize(words)
			}
			for _, w := range words {
				if ids, err = t.model.tokenize(ids, w.s); err != nil {
					return nil, err
				}
			}
		}
	}
	return ids, nil
}

// Decode turns IDs back into text with the file's decoder (tokens joined
// by spaces when it has none). Special tokens are kept, as the library
// does by default. An ID no token has is an error.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	toks := make([]string, len(ids))
	for i, id := range ids {
		s, ok := t.Token(id)
		if !ok {
			return "", fmt.Errorf("tokenizer: Decode: id %d at position %d: no such token (vocabulary size %d)", id, i, t.vocab)
		}
		toks[i] = s
	}
	if t.dec == nil {
		out := ""
		for i, s := range toks {
			if i > 0 {
				out += " "
			}
			out += s
		}
		return out, nil
	}
	for _, d := range t.dec {
		toks = d.decode(toks)
	}
	n := 0
	for _, s := range toks {
		n += len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range toks {
		b = append(b, s...)
	}
	return string(b), nil
}
