package ci

import (
	"fmt"
	"strconv"
	"strings"
)

// parseYAML parses the block-style subset of YAML that workflow files use:
// mappings, sequences, plain and quoted scalars, literal (|) and folded (>)
// block scalars, and comments. Anything else — flow collections, anchors,
// tags, tabs for indentation, duplicate keys — is an error, so a workflow
// that parses here is plain YAML any parser reads alike. Mappings decode to
// map[string]any, sequences to []any, scalars to string.
func parseYAML(src string) (any, error) {
	p := &yamlParser{lines: strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")}
	p.skip()
	if p.i >= len(p.lines) {
		return nil, nil
	}
	ind, _ := p.peek()
	v, err := p.node(ind)
	if err != nil {
		return nil, err
	}
	p.skip()
	if p.i < len(p.lines) {
		return nil, p.errf("unexpected indentation")
	}
	return v, nil
}

type yamlParser struct {
	lines []string
	i     int
	// override replaces the current line's indentation and text: the rest
	// of a "- key: value" sequence item, parsed as a mapping.
	override *struct {
		ind  int
		text string
	}
}

func (p *yamlParser) errf(format string, args ...any) error {
	return fmt.Errorf("yaml: line %d: %s", p.i+1, fmt.Sprintf(format, args...))
}

// skip moves past blank and comment-only lines.
func (p *yamlParser) skip() {
	if p.override != nil {
		return
	}
	for p.i < len(p.lines) {
		t := strings.TrimSpace(p.lines[p.i])
		if t != "" && !strings.HasPrefix(t, "#") {
			return
		}
		p.i++
	}
}

// peek returns the indentation and text of the current line.
func (p *yamlParser) peek() (int, string) {
	if p.override != nil {
		return p.override.ind, p.override.text
	}
	l := p.lines[p.i]
	t := strings.TrimLeft(l, " ")
	return len(l) - len(t), strings.TrimRight(t, " ")
}

// tabbed reports whether the current line is indented with a tab, which
// YAML forbids.
func (p *yamlParser) tabbed() bool {
	return p.override == nil && strings.HasPrefix(strings.TrimLeft(p.lines[p.i], " "), "\t")
}

func (p *yamlParser) next() {
	if p.override != nil {
		p.override = nil
	}
	p.i++
	p.skip()
}

func (p *yamlParser) done() bool { return p.override == nil && p.i >= len(p.lines) }

func isSeqItem(t string) bool { return t == "-" || strings.HasPrefix(t, "- ") }

func (p *yamlParser) node(ind int) (any, error) {
	_, t := p.peek()
	if isSeqItem(t) {
		return p.sequence(ind)
	}
	return p.mapping(ind)
}

func (p *yamlParser) sequence(ind int) ([]any, error) {
	var out []any
	for !p.done() {
		if p.tabbed() {
			return nil, p.errf("tab in indentation")
		}
		i, t := p.peek()
		if i < ind {
			break
		}
		if i > ind || !isSeqItem(t) {
			return nil, p.errf("unexpected indentation or content in a sequence: %q", t)
		}
		rest := strings.TrimLeft(strings.TrimPrefix(t, "-"), " ")
		if rest == "" {
			p.next()
			if p.done() {
				out = append(out, nil)
				break
			}
			ci, _ := p.peek()
			if ci <= ind {
				out = append(out, nil)
				continue
			}
			v, err := p.node(ci)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			continue
		}
		itemInd := ind + (len(t) - len(rest))
		if _, _, isMap := splitKey(rest); isMap || isSeqItem(rest) {
			p.override = &struct {
				ind  int
				text string
			}{itemInd, rest}
			v, err := p.node(itemInd)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			continue
		}
		v, err := p.scalar(rest)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.next()
	}
	return out, nil
}

// splitKey splits "key: value" (or "key:") into key and value.
func splitKey(t string) (key, rest string, ok bool) {
	if strings.HasPrefix(t, `"`) || strings.HasPrefix(t, `'`) {
		q := t[0]
		end := strings.IndexByte(t[1:], q)
		if end < 0 {
			return "", "", false
		}
		after := t[end+2:]
		if after == ":" || strings.HasPrefix(after, ": ") {
			return t[:end+2], strings.TrimSpace(strings.TrimPrefix(after, ":")), true
		}
		return "", "", false
	}
	if i := strings.Index(t, ": "); i > 0 {
		return t[:i], strings.TrimSpace(t[i+2:]), true
	}
	if strings.HasSuffix(t, ":") {
		return t[:len(t)-1], "", true
	}
	return "", "", false
}

func (p *yamlParser) mapping(ind int) (map[string]any, error) {
	out := map[string]any{}
	for !p.done() {
		if p.tabbed() {
			return nil, p.errf("tab in indentation")
		}
		i, t := p.peek()
		if i < ind {
			break
		}
		if i > ind {
			return nil, p.errf("unexpected indentation: %q", t)
		}
		if isSeqItem(t) {
			break // a sequence at the same indentation ends this mapping's parent value
		}
		rawKey, rest, ok := splitKey(t)
		if !ok {
			return nil, p.errf("want \"key: value\", have %q", t)
		}
		key := rawKey
		if strings.HasPrefix(rawKey, `"`) || strings.HasPrefix(rawKey, `'`) {
			k, err := p.scalar(rawKey)
			if err != nil {
				return nil, err
			}
			key = k.(string)
		}
		if _, dup := out[key]; dup {
			return nil, p.errf("duplicate key %q", key)
		}
		switch {
		case rest == "" || strings.HasPrefix(rest, "#"):
			p.next()
			if p.done() {
				out[key] = nil
				break
			}
			ci, ct := p.peek()
			if ci > ind || (ci == ind && isSeqItem(ct)) {
				v, err := p.node(ci)
				if err != nil {
					return nil, err
				}
				out[key] = v
			} else {
				out[key] = nil
			}
		case rest[0] == '|' || rest[0] == '>':
			v, err := p.block(ind, rest)
			if err != nil {
				return nil, err
			}
			out[key] = v
		default:
			v, err := p.scalar(rest)
			if err != nil {
				return nil, err
			}
			out[key] = v
			p.next()
		}
	}
	return out, nil
}

// block reads a literal or folded block scalar whose header (|, |-, >, …)
// ends the current line, belonging to a key at indentation ind.
func (p *yamlParser) block(ind int, header string) (string, error) {
	if h := strings.TrimSpace(strings.SplitN(header, "#", 2)[0]); h != "|" && h != ">" && h != "|-" && h != ">-" {
		return "", p.errf("unsupported block scalar header %q", header)
	}
	p.override = nil
	p.i++
	var body []string
	bodyInd := -1
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		t := strings.TrimLeft(l, " ")
		if t == "" {
			body = append(body, "")
			p.i++
			continue
		}
		i := len(l) - len(t)
		if i <= ind {
			break
		}
		if bodyInd < 0 {
			bodyInd = i
		}
		if i < bodyInd {
			return "", p.errf("block scalar line less indented than its first line")
		}
		body = append(body, l[bodyInd:])
		p.i++
	}
	for len(body) > 0 && body[len(body)-1] == "" {
		body = body[:len(body)-1]
	}
	p.skip()
	sep := "\n"
	if header[0] == '>' {
		sep = " "
	}
	s := strings.Join(body, sep)
	if !strings.HasSuffix(header, "-") {
		s += "\n"
	}
	return s, nil
}

func (p *yamlParser) scalar(t string) (any, error) {
	switch {
	case strings.HasPrefix(t, `"`):
		end := closingQuote(t)
		if end < 0 {
			return nil, p.errf("unterminated string %s", t)
		}
		if err := trailingComment(t[end+1:]); err != nil {
			return nil, p.errf("%v", err)
		}
		s, err := strconv.Unquote(t[:end+1])
		if err != nil {
			return nil, p.errf("string %s: %v", t[:end+1], err)
		}
		return s, nil
	case strings.HasPrefix(t, `'`):
		var b strings.Builder
		for i := 1; i < len(t); i++ {
			if t[i] == '\'' {
				if i+1 < len(t) && t[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				if err := trailingComment(t[i+1:]); err != nil {
					return nil, p.errf("%v", err)
				}
				return b.String(), nil
			}
			b.WriteByte(t[i])
		}
		return nil, p.errf("unterminated string %s", t)
	case strings.ContainsAny(t[:1], "{[&*!%@`|>"):
		return nil, p.errf("unsupported YAML (flow collection, anchor, tag or block indicator): %q", t)
	}
	if i := strings.Index(t, " #"); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	return t, nil
}

func closingQuote(t string) int {
	for i := 1; i < len(t); i++ {
		switch t[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

func trailingComment(s string) error {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "#") {
		return nil
	}
	return fmt.Errorf("text after a quoted string: %q", s)
}
