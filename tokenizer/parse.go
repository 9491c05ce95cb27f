package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// loadErr is an error naming the file and the JSON path of the problem.
func loadErr(path, where, format string, args ...any) error {
	return fmt.Errorf("tokenizer: %s: %s: %s", path, where, fmt.Sprintf(format, args...))
}

// rawFile is tokenizer.json's top level.
type rawFile struct {
	Version       string          `json:"version"`
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	AddedTokens   []rawAddedToken `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         json.RawMessage `json:"model"`
}

type rawAddedToken struct {
	ID         *int   `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized *bool  `json:"normalized"`
	Special    bool   `json:"special"`
}

// isNull reports a missing or null JSON value.
func isNull(m json.RawMessage) bool {
	m = bytes.TrimSpace(m)
	return len(m) == 0 || bytes.Equal(m, []byte("null"))
}

// object decodes a component into a map of its fields and returns its
// type ("" when it has none).
func object(path, where string, m json.RawMessage) (map[string]json.RawMessage, string, error) {
	var o map[string]json.RawMessage
	if err := json.Unmarshal(m, &o); err != nil {
		return nil, "", loadErr(path, where, "not an object: %v", err)
	}
	var typ string
	if t, ok := o["type"]; ok {
		if err := json.Unmarshal(t, &typ); err != nil {
			return nil, "", loadErr(path, where+".type", "not a string")
		}
	}
	return o, typ, nil
}

// field decodes o[name] into v when present and not null; it reports
// whether it was.
func field(path, where string, o map[string]json.RawMessage, name string, v any) (bool, error) {
	m, ok := o[name]
	if !ok || isNull(m) {
		return false, nil
	}
	if err := json.Unmarshal(m, v); err != nil {
		return false, loadErr(path, where+"."+name, "%v", err)
	}
	return true, nil
}

// known refuses fields a component has that are not in names (beyond
// "type"): an option this package does not know may change the output.
func known(path, where, typ string, o map[string]json.RawMessage, names ...string) error {
	for k := range o {
		if k == "type" {
			continue
		}
		ok := false
		for _, n := range names {
			if k == n {
				ok = true
				break
			}
		}
		if !ok {
			return loadErr(path, where+"."+k, "option of %s not supported", typ)
		}
	}
	return nil
}

func parse(path string, data []byte) (*Tokenizer, error) {
	var f rawFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, loadErr(path, "(top level)", "%v", err)
	}
	if !isNull(f.Truncation) {
		return nil, loadErr(path, "truncation", "not supported (must be null)")
	}
	if !isNull(f.Padding) {
		return nil, loadErr(path, "padding", "not supported (must be null)")
	}
	if isNull(f.Model) {
		return nil, loadErr(path, "model", "missing")
	}
	t := &Tokenizer{path: path, bos: -1, eos: -1}
	var err error
	if t.model, err = parseModel(path, f.Model); err != nil {
		return nil, err
	}
	if !isNull(f.Normalizer) {
		if t.norm, err = parseNormalizer(path, "normalizer", f.Normalizer); err != nil {
			return nil, err
		}
	}
	if !isNull(f.PreTokenizer) {
		if t.pre, err = parsePreTokenizer(path, "pre_tokenizer", f.PreTokenizer); err != nil {
			return nil, err
		}
	}
	if !isNull(f.Decoder) {
		if t.dec, err = parseDecoder(path, "decoder", f.Decoder); err != nil {
			return nil, err
		}
	}
	if err := t.parseAdded(f.AddedTokens); err != nil {
		return nil, err
	}
	if !isNull(f.PostProcessor) {
		if t.post, err = t.parsePost("post_processor", f.PostProcessor); err != nil {
			return nil, err
		}
	}
	t.buildIDs()
	return t, nil
}

func parseModel(path string, m json.RawMessage) (*bpeModel, error) {
	o, typ, err := object(path, "model", m)
	if err != nil {
		return nil, err
	}
	if typ == "" {
		// Older files (GPT-2's) leave the type out; the library then
		// recognises BPE by its fields.
		_, hasMerges := o["merges"]
		if !hasMerges {
			return nil, loadErr(path, "model", "no type and no merges: only BPE is supported")
		}
		typ = "BPE"
	}
	if typ != "BPE" {
		return nil, loadErr(path, "model.type", "%q: not supported (only BPE)", typ)
	}
	if err := known(path, "model", typ, o, "dropout", "unk_token", "continuing_subword_prefix",
		"end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges", "vocab", "merges"); err != nil {
		return nil, err
	}
	var dropout float64
	if _, err := field(path, "model", o, "dropout", &dropout); err != nil {
		return nil, err
	}
	if dropout != 0 {
		return nil, loadErr(path, "model.dropout", "%g: BPE dropout is random and not supported", dropout)
	}
	b := &bpeModel{unk: -1, cache: map[string][]int32{}}
	var vocab map[string]int
	if ok, err := field(path, "model", o, "vocab", &vocab); err != nil {
		return nil, err
	} else if !ok {
		return nil, loadErr(path, "model.vocab", "missing")
	}
	b.vocab = make(map[string]int32, len(vocab))
	for k, v := range vocab {
		if v < 0 || v >= 1<<31-1 {
			return nil, loadErr(path, "model.vocab", "token %q: id %d out of range", k, v)
		}
		b.vocab[k] = int32(v)
	}
	var unk string
	if _, err := field(path, "model", o, "unk_token", &unk); err != nil {
		return nil, err
	}
	if unk != "" {
		id, ok := b.vocab[unk]
		if !ok {
			return nil, loadErr(path, "model.unk_token", "%q not in the vocabulary", unk)
		}
		b.unk = id
	}
	for _, fl := range []struct {
		name string
		v    *bool
	}{{"fuse_unk", &b.fuseUnk}, {"byte_fallback", &b.byteFallback}, {"ignore_merges", &b.ignoreMerges}} {
		if _, err := field(path, "model", o, fl.name, fl.v); err != nil {
			return nil, err
		}
	}
	if _, err := field(path, "model", o, "continuing_subword_prefix", &b.prefix); err != nil {
		return nil, err
	}
	if _, err := field(path, "model", o, "end_of_word_suffix", &b.suffix); err != nil {
		return nil, err
	}
	for i := range b.byteIDs {
		b.byteIDs[i] = -1
		if id, ok := b.vocab[byteToken(byte(i))]; ok && b.byteFallback {
			b.byteIDs[i] = id
		}
	}
	var merges []json.RawMessage
	if _, err := field(path, "model", o, "merges", &merges); err != nil {
		return nil, err
	}
	b.merges = make(map[uint64]uint64, len(merges))
	for i, raw := range merges {
		where := fmt.Sprintf("model.merges[%d]", i)
		var pair []string
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			pair = strings.Split(s, " ")
		} else if err := json.Unmarshal(raw, &pair); err != nil {
			return nil, loadErr(path, where, "neither \"a b\" nor [\"a\", \"b\"]")
		}
		if len(pair) != 2 {
			return nil, loadErr(path, where, "%s: not a pair", raw)
		}
		a, ok := b.vocab[pair[0]]
		if !ok {
			return nil, loadErr(path, where, "%q not in the vocabulary", pair[0])
		}
		c, ok := b.vocab[pair[1]]
		if !ok {
			return nil, loadErr(path, where, "%q not in the vocabulary", pair[1])
		}
		right := pair[1]
		if b.prefix != "" && strings.HasPrefix(right, b.prefix) {
			right = right[len(b.prefix):]
		}
		merged := pair[0] + right
		id, ok := b.vocab[merged]
		if !ok {
			return nil, loadErr(path, where, "merged token %q not in the vocabulary", merged)
		}
		// Later duplicates win, as in the library's map.
		b.merges[uint64(uint32(a))<<32|uint64(uint32(c))] = uint64(i)<<32 | uint64(uint32(id))
	}
	return b, nil
}

// parsePattern reads a Split/Replace pattern: {"String": s} or {"Regex": r}.
func parsePattern(path, where string, m json.RawMessage) (matcher, error) {
	var p struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	}
	if err := json.Unmarshal(m, &p); err != nil {
		return nil, loadErr(path, where, "%v", err)
	}
	switch {
	case p.String != nil && p.Regex == nil:
		return literalMatcher(*p.String), nil
	case p.Regex != nil && p.String == nil:
		re, err := compileRegex(*p.Regex)
		if err != nil {
			return nil, loadErr(path, where+".Regex", "%q: %v", *p.Regex, err)
		}
		return re, nil
	}
	return nil, loadErr(path, where, "need exactly one of String and Regex")
}

func parseNormalizer(path, where string, m json.RawMessage) (normalizer, error) {
	o, typ, err := object(path, where, m)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "NFC", "NFD", "NFKC", "NFKD":
		if err := known(path, where, typ, o); err != nil {
			return nil, err
		}
		form := map[string]norm.Form{"NFC": norm.NFC, "NFD": norm.NFD, "NFKC": norm.NFKC, "NFKD": norm.NFKD}[typ]
		return unicodeNorm{form}, nil
	case "Lowercase":
		return lowercaseNorm{}, known(path, where, typ, o)
	case "Prepend":
		var p string
		if _, err := field(path, where, o, "prepend", &p); err != nil {
			return nil, err
		}
		return prependNorm{p}, known(path, where, typ, o, "prepend")
	case "Replace":
		r, err := parseReplace(path, where, typ, o)
		if err != nil {
			return nil, err
		}
		return replaceNorm(r), nil
	case "Strip":
		var n stripNorm
		if _, err := field(path, where, o, "strip_left", &n.left); err != nil {
			return nil, err
		}
		if _, err := field(path, where, o, "strip_right", &n.right); err != nil {
			return nil, err
		}
		return n, known(path, where, typ, o, "strip_left", "strip_right")
	case "Sequence":
		var subs []json.RawMessage
		if _, err := field(path, where, o, "normalizers", &subs); err != nil {
			return nil, err
		}
		var q seqNorm
		for i, s := range subs {
			n, err := parseNormalizer(path, fmt.Sprintf("%s.normalizers[%d]", where, i), s)
			if err != nil {
				return nil, err
			}
			q = append(q, n)
		}
		return q, known(path, where, typ, o, "normalizers")
	}
	return nil, loadErr(path, where+".type", "%q: not supported", typ)
}

// parseReplace reads a Replace normalizer or decoder.
func parseReplace(path, where, typ string, o map[string]json.RawMessage) (replaceDec, error) {
	var d replaceDec
	if err := known(path, where, typ, o, "pattern", "content"); err != nil {
		return d, err
	}
	pm, ok := o["pattern"]
	if !ok {
		return d, loadErr(path, where+".pattern", "missing")
	}
	var err error
	if d.pat, err = parsePattern(path, where+".pattern", pm); err != nil {
		return d, err
	}
	if _, err := field(path, where, o, "content", &d.content); err != nil {
		return d, err
	}
	return d, nil
}

func parsePreTokenizer(path, where string, m json.RawMessage) ([]preTokenizer, error) {
	o, typ, err := object(path, where, m)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var subs []json.RawMessage
		if _, err := field(path, where, o, "pretokenizers", &subs); err != nil {
			return nil, err
		}
		var out []preTokenizer
		for i, s := range subs {
			p, err := parsePreTokenizer(path, fmt.Sprintf("%s.pretokenizers[%d]", where, i), s)
			if err != nil {
				return nil, err
			}
			out = append(out, p...)
		}
		return out, known(path, where, typ, o, "pretokenizers")
	case "ByteLevel":
		// trim_offsets only changes offsets, which Encode does not return.
		if err := known(path, where, typ, o, "add_prefix_space", "trim_offsets", "use_regex"); err != nil {
			return nil, err
		}
		p := byteLevelPre{}
		if _, err := field(path, where, o, "add_prefix_space", &p.addPrefixSpace); err != nil {
			return nil, err
		}
		useRegex := true
		if _, err := field(path, where, o, "use_regex", &useRegex); err != nil {
			return nil, err
		}
		if useRegex {
			p.split = gpt2Matcher()
		}
		return []preTokenizer{p}, nil
	case "Split":
		if err := known(path, where, typ, o, "pattern", "behavior", "invert"); err != nil {
			return nil, err
		}
		pm, ok := o["pattern"]
		if !ok {
			return nil, loadErr(path, where+".pattern", "missing")
		}
		p := splitPre{}
		if p.m, err = parsePattern(path, where+".pattern", pm); err != nil {
			return nil, err
		}
		if p.behavior, err = parseBehavior(path, where, o); err != nil {
			return nil, err
		}
		if _, err := field(path, where, o, "invert", &p.invert); err != nil {
			return nil, err
		}
		return []preTokenizer{p}, nil
	case "Digits":
		p := digitsPre{}
		if _, err := field(path, where, o, "individual_digits", &p.individual); err != nil {
			return nil, err
		}
		return []preTokenizer{p}, known(path, where, typ, o, "individual_digits")
	case "Metaspace":
		if err := known(path, where, typ, o, "replacement", "str_rep", "add_prefix_space", "prepend_scheme", "split"); err != nil {
			return nil, err
		}
		p, err := parseMetaspace(path, where, o)
		if err != nil {
			return nil, err
		}
		return []preTokenizer{metaspacePre{replacement: p.rep, prepend: p.scheme, split: p.split}}, nil
	}
	return nil, loadErr(path, where+".type", "%q: not supported", typ)
}

func parseBehavior(path, where string, o map[string]json.RawMessage) (splitBehavior, error) {
	var s string
	if _, err := field(path, where, o, "behavior", &s); err != nil {
		return 0, err
	}
	switch s {
	case "Removed":
		return removed, nil
	case "Isolated":
		return isolated, nil
	case "MergedWithPrevious":
		return mergedWithPrevious, nil
	case "MergedWithNext":
		return mergedWithNext, nil
	case "Contiguous":
		return contiguous, nil
	}
	return 0, loadErr(path, where+".behavior", "%q: not supported", s)
}

type metaspaceOpts struct {
	rep    string
	scheme string
	split  bool
}

// parseMetaspace reads a Metaspace pre-tokenizer or decoder: the newer
// prepend_scheme, or the older add_prefix_space (true = "always").
func parseMetaspace(path, where string, o map[string]json.RawMessage) (metaspaceOpts, error) {
	p := metaspaceOpts{rep: "▁", scheme: "always", split: true}
	if _, err := field(path, where, o, "replacement", &p.rep); err != nil {
		return p, err
	}
	if utf8.RuneCountInString(p.rep) != 1 {
		return p, loadErr(path, where+".replacement", "%q: not one character", p.rep)
	}
	var add *bool
	if _, err := field(path, where, o, "add_prefix_space", &add); err != nil {
		return p, err
	}
	if add != nil && !*add {
		p.scheme = "never"
	}
	if _, err := field(path, where, o, "prepend_scheme", &p.scheme); err != nil {
		return p, err
	}
	switch p.scheme {
	case "always", "first", "never":
	default:
		return p, loadErr(path, where+".prepend_scheme", "%q: not always, first or never", p.scheme)
	}
	if _, err := field(path, where, o, "split", &p.split); err != nil {
		return p, err
	}
	return p, nil
}

func parseDecoder(path, where string, m json.RawMessage) ([]decoder, error) {
	o, typ, err := object(path, where, m)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var subs []json.RawMessage
		if _, err := field(path, where, o, "decoders", &subs); err != nil {
			return nil, err
		}
		out := []decoder{}
		for i, s := range subs {
			d, err := parseDecoder(path, fmt.Sprintf("%s.decoders[%d]", where, i), s)
			if err != nil {
				return nil, err
			}
			out = append(out, d...)
		}
		return out, known(path, where, typ, o, "decoders")
	case "ByteLevel":
		return []decoder{byteLevelDec{}}, known(path, where, typ, o, "add_prefix_space", "trim_offsets", "use_regex")
	case "Metaspace":
		if err := known(path, where, typ, o, "replacement", "str_rep", "add_prefix_space", "prepend_scheme", "split"); err != nil {
			return nil, err
		}
		p, err := parseMetaspace(path, where, o)
		if err != nil {
			return nil, err
		}
		r, _ := utf8.DecodeRuneInString(p.rep)
		return []decoder{metaspaceDec{replacement: r, prepend: p.scheme != "never"}}, nil
	case "ByteFallback":
		return []decoder{byteFallbackDec{}}, known(path, where, typ, o)
	case "Fuse":
		return []decoder{fuseDec{}}, known(path, where, typ, o)
	case "Strip":
		var d stripDec
		var content string
		if _, err := field(path, where, o, "content", &content); err != nil {
			return nil, err
		}
		if utf8.RuneCountInString(content) != 1 {
			return nil, loadErr(path, where+".content", "%q: not one character", content)
		}
		d.content, _ = utf8.DecodeRuneInString(content)
		if _, err := field(path, where, o, "start", &d.start); err != nil {
			return nil, err
		}
		if _, err := field(path, where, o, "stop", &d.stop); err != nil {
			return nil, err
		}
		return []decoder{d}, known(path, where, typ, o, "content", "start", "stop")
	case "Replace":
		d, err := parseReplace(path, where, typ, o)
		if err != nil {
			return nil, err
		}
		return []decoder{d}, nil
	}
	return nil, loadErr(path, where+".type", "%q: not supported", typ)
}

// parseAdded reads added_tokens, checking each against the vocabulary.
func (t *Tokenizer) parseAdded(raw []rawAddedToken) error {
	a := &t.added
	a.byContent = map[string]int{}
	a.byID = map[int]*addedToken{}
	var rev []string // vocabulary id → token
	for s, id := range t.model.vocab {
		if int(id) >= len(rev) {
			rev = append(rev, make([]string, int(id)+1-len(rev))...)
		}
		rev[id] = s
	}
	for i, r := range raw {
		where := fmt.Sprintf("added_tokens[%d]", i)
		if r.ID == nil || *r.ID < 0 || *r.ID >= 1<<31-1 {
			return loadErr(t.path, where+".id", "missing or out of range")
		}
		if r.Content == "" {
			continue // the library ignores empty tokens
		}
		normalized := !r.Special // the library's default
		if r.Normalized != nil {
			normalized = *r.Normalized
		}
		tok := &addedToken{id: *r.ID, content: r.Content, special: r.Special, normalized: normalized,
			singleWord: r.SingleWord, lstrip: r.LStrip, rstrip: r.RStrip, pattern: r.Content}
		if vid, ok := t.model.vocab[r.Content]; ok && int(vid) != tok.id {
			return loadErr(t.path, where, "token %q has id %d but the vocabulary gives it %d", r.Content, tok.id, vid)
		}
		if tok.id < len(rev) && rev[tok.id] != "" && rev[tok.id] != tok.content {
			return loadErr(t.path, where, "token %q: id %d is the vocabulary's %q", r.Content, tok.id, rev[tok.id])
		}
		if old, ok := a.byID[tok.id]; ok {
			return loadErr(t.path, where, "token %q: id %d already taken by %q", r.Content, tok.id, old.content)
		}
		a.byContent[tok.content] = tok.id
		a.byID[tok.id] = tok
		if normalized && t.norm != nil {
			tok.pattern = t.norm.normalize(tok.content)
		}
		if normalized {
			a.norm.add(tok)
		} else {
			a.raw.add(tok)
		}
	}
	return nil
}

// parsePost reads the post-processor into the steps Encode applies for
// one sequence with addSpecial.
func (t *Tokenizer) parsePost(where string, m json.RawMessage) ([]postStep, error) {
	path := t.path
	o, typ, err := object(path, where, m)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "ByteLevel":
		// Only trims offsets.
		return nil, known(path, where, typ, o, "add_prefix_space", "trim_offsets", "use_regex")
	case "Sequence":
		var subs []json.RawMessage
		if _, err := field(path, where, o, "processors", &subs); err != nil {
			return nil, err
		}
		var steps []postStep
		for i, s := range subs {
			st, err := t.parsePost(fmt.Sprintf("%s.processors[%d]", where, i), s)
			if err != nil {
				return nil, err
			}
			if st != nil {
				if steps != nil {
					return nil, loadErr(path, where, "more than one processor adds tokens: not supported")
				}
				steps = st
			}
		}
		return steps, known(path, where, typ, o, "processors")
	case "RobertaProcessing", "BertProcessing":
		// trim_offsets and add_prefix_space only change offsets.
		if err := known(path, where, typ, o, "sep", "cls", "trim_offsets", "add_prefix_space"); err != nil {
			return nil, err
		}
		var sep, cls [2]json.RawMessage
		if _, err := field(path, where, o, "sep", &sep); err != nil {
			return nil, err
		}
		if _, err := field(path, where, o, "cls", &cls); err != nil {
			return nil, err
		}
		var sepID, clsID int
		if err := json.Unmarshal(sep[1], &sepID); err != nil {
			return nil, loadErr(path, where+".sep", "%v", err)
		}
		if err := json.Unmarshal(cls[1], &clsID); err != nil {
			return nil, loadErr(path, where+".cls", "%v", err)
		}
		return []postStep{{ids: []int{clsID}}, {seq: true}, {ids: []int{sepID}}}, nil
	case "TemplateProcessing":
		if err := known(path, where, typ, o, "single", "pair", "special_tokens"); err != nil {
			return nil, err
		}
		var single []map[string]struct {
			ID     string `json:"id"`
			TypeID int    `json:"type_id"`
		}
		if _, err := field(path, where, o, "single", &single); err != nil {
			return nil, err
		}
		var specials map[string]struct {
			ID     string   `json:"id"`
			IDs    []int    `json:"ids"`
			Tokens []string `json:"tokens"`
		}
		if _, err := field(path, where, o, "special_tokens", &specials); err != nil {
			return nil, err
		}
		steps := []postStep{}
		nseq := 0
		for i, item := range single {
			w := fmt.Sprintf("%s.single[%d]", where, i)
			if len(item) != 1 {
				return nil, loadErr(path, w, "not one SpecialToken or Sequence")
			}
			for kind, v := range item {
				switch kind {
				case "Sequence":
					if v.ID != "A" {
						return nil, loadErr(path, w+".Sequence.id", "%q: a single sequence template must use A", v.ID)
					}
					steps = append(steps, postStep{seq: true})
					nseq++
				case "SpecialToken":
					sp, ok := specials[v.ID]
					if !ok {
						return nil, loadErr(path, w+".SpecialToken.id", "%q not in special_tokens", v.ID)
					}
					steps = append(steps, postStep{ids: sp.IDs})
				default:
					return nil, loadErr(path, w, "%q: not SpecialToken or Sequence", kind)
				}
			}
		}
		if nseq != 1 {
			return nil, loadErr(path, where+".single", "has %d sequences, want 1", nseq)
		}
		return steps, nil
	}
	return nil, loadErr(path, where+".type", "%q: not supported", typ)
}

// buildIDs fills the id → token table and the vocabulary size.
func (t *Tokenizer) buildIDs() {
	n := 0
	for _, id := range t.model.vocab {
		n = max(n, int(id)+1)
	}
	for id := range t.added.byID {
		n = max(n, id+1)
	}
	t.vocab = n
	t.tokens = make([]string, n)
	t.hasTok = make([]bool, n)
	for s, id := range t.model.vocab {
		t.tokens[id], t.hasTok[id] = s, true
	}
	for id, a := range t.added.byID {
		t.tokens[id], t.hasTok[id] = a.content, true
	}
}

// resolveBOSEOS sets BOS and EOS from tokenizer_config.json or
// special_tokens_map.json in dir, else from the post-processor and the
// added tokens.
func (t *Tokenizer) resolveBOSEOS(dir string) error {
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("tokenizer: %w", err)
		}
		var cfg map[string]json.RawMessage
		if err := json.Unmarshal(data, &cfg); err != nil {
			return fmt.Errorf("tokenizer: %s: %v", p, err)
		}
		for _, k := range []struct {
			name string
			dst  *int
		}{{"bos_token", &t.bos}, {"eos_token", &t.eos}} {
			raw, ok := cfg[k.name]
			if !ok {
				continue
			}
			id, err := t.specialFromConfig(p, k.name, raw)
			if err != nil {
				return err
			}
			*k.dst = id
		}
		return nil
	}
	// No config: the template's special tokens around the sequence.
	seen := false
	for _, s := range t.post {
		switch {
		case s.seq:
			seen = true
		case !seen && len(s.ids) == 1 && t.bos < 0:
			t.bos = s.ids[0]
		case seen && len(s.ids) == 1:
			t.eos = s.ids[0]
		}
	}
	if t.eos < 0 {
		if a, ok := t.added.byContent["<|endoftext|>"]; ok && t.added.byID[a].special {
			t.eos = a
		}
	}
	return nil
}

// specialFromConfig resolves a bos_token/eos_token value: null, a string
// or an AddedToken object with content.
func (t *Tokenizer) specialFromConfig(p, name string, raw json.RawMessage) (int, error) {
	if isNull(raw) {
		return -1, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var obj struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == "" {
			return 0, fmt.Errorf("tokenizer: %s: %s: neither a string nor an object with content", p, name)
		}
		s = obj.Content
	}
	id, ok := t.TokenID(s)
	if !ok {
		return 0, fmt.Errorf("tokenizer: %s: %s %q: not a token of %s", p, name, s, t.path)
	}
	return id, nil
}
