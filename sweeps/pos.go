package sweeps

import (
	"strconv"
	"strings"
)

// pos is a 1-based line and byte column in a sweep file.
type pos struct{ line, col int }

// positions maps key paths of a TOML document to where they appear.
// BurntSushi/toml keeps key positions private, so a small scanner walks the
// (already validated) source once and records, for every key path, the
// position of the key and of its value. Array elements get paths with an
// index suffix, "grid.rank[1]"; elements of arrays of tables likewise,
// "include[0].method".
type positions struct {
	keys map[string]pos
	vals map[string]pos
}

// key returns the position of the key at path, falling back to its value,
// then to the nearest enclosing path that has one.
func (ps *positions) key(path string) pos {
	for p := path; p != ""; p = parentPath(p) {
		if q, ok := ps.keys[p]; ok {
			return q
		}
		if q, ok := ps.vals[p]; ok {
			return q
		}
	}
	return pos{1, 1}
}

// val returns the position of the value at path, falling back to its key.
func (ps *positions) val(path string) pos {
	if q, ok := ps.vals[path]; ok {
		return q
	}
	return ps.key(path)
}

// parentPath drops the last segment or index of a key path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	inQuote := false
	last := -1
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '"':
			inQuote = !inQuote
		case '\\':
			if inQuote {
				i++
			}
		case '.':
			if !inQuote {
				last = i
			}
		}
	}
	if last < 0 {
		return ""
	}
	return p[:last]
}

// join appends key segments to a key path, quoting segments that are not
// bare TOML keys.
func join(path string, segs ...string) string {
	var b strings.Builder
	b.WriteString(path)
	for _, s := range segs {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if isBare(s) {
			b.WriteString(s)
		} else {
			b.WriteString(strconv.Quote(s))
		}
	}
	return b.String()
}

// index appends an array index to a key path.
func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func isBare(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// scanner walks TOML source that BurntSushi/toml has accepted. It does not
// validate; on input it does not understand it stops early, which only
// costs precision of later positions.
type scanner struct {
	src       string
	i         int
	line, col int
	ps        *positions
	tables    map[string]int // array-of-tables path → element count
}

func scanPositions(src string) *positions {
	s := &scanner{
		src:    src,
		line:   1,
		col:    1,
		ps:     &positions{keys: map[string]pos{}, vals: map[string]pos{}},
		tables: map[string]int{},
	}
	defer func() { _ = recover() }() // best effort: keep what was found
	s.document()
	return s.ps
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *scanner) advance() {
	if s.src[s.i] == '\n' {
		s.line++
		s.col = 1
	} else {
		s.col++
	}
	s.i++
}

func (s *scanner) here() pos { return pos{s.line, s.col} }

// skipSpace skips blanks and comments; with nl it also skips newlines.
func (s *scanner) skipSpace(nl bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			s.advance()
		case c == '\n' && nl:
			s.advance()
		case c == '#':
			for !s.eof() && s.peek() != '\n' {
				s.advance()
			}
		default:
			return
		}
	}
}

func (s *scanner) document() {
	table := ""
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		if s.peek() == '[' {
			table = s.header()
			continue
		}
		s.keyval(table)
	}
}

// header scans [a.b] or [[a.b]] and returns the table's path.
func (s *scanner) header() string {
	at := s.here()
	s.advance()
	array := s.peek() == '['
	if array {
		s.advance()
	}
	segs := s.key()
	s.skipSpace(false)
	s.advance() // ]
	if array {
		s.advance()
	}
	path := s.resolve(segs[:len(segs)-1])
	path = join(path, segs[len(segs)-1])
	if array {
		n := s.tables[path]
		s.tables[path] = n + 1
		s.ps.keys[path] = at
		path = index(path, n)
	}
	s.ps.keys[path] = at
	return path
}

// resolve builds the path of header prefix segments, entering the last
// element of arrays of tables.
func (s *scanner) resolve(segs []string) string {
	path := ""
	for _, seg := range segs {
		path = join(path, seg)
		if n, ok := s.tables[path]; ok {
			path = index(path, n-1)
		}
	}
	return path
}

// key scans a dotted key and returns its segments.
func (s *scanner) key() []string {
	var segs []string
	for {
		s.skipSpace(false)
		switch s.peek() {
		case '"', '\'':
			segs = append(segs, s.str())
		default:
			start := s.i
			for !s.eof() && isBareByte(s.peek()) {
				s.advance()
			}
			segs = append(segs, s.src[start:s.i])
		}
		s.skipSpace(false)
		if s.peek() != '.' {
			return segs
		}
		s.advance()
	}
}

func isBareByte(c byte) bool {
	return c == '_' || c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// keyval scans key = value inside table.
func (s *scanner) keyval(table string) {
	at := s.here()
	segs := s.key()
	path := join(table, segs...)
	if _, dup := s.ps.keys[path]; !dup {
		s.ps.keys[path] = at
	}
	s.skipSpace(false)
	s.advance() // =
	s.skipSpace(false)
	s.value(path)
}

// value scans one value and records its position under path.
func (s *scanner) value(path string) {
	s.ps.vals[path] = s.here()
	switch c := s.peek(); c {
	case '[':
		s.advance()
		for n := 0; ; n++ {
			s.skipSpace(true)
			if s.peek() == ']' {
				s.advance()
				return
			}
			s.value(index(path, n))
			s.skipSpace(true)
			if s.peek() == ',' {
				s.advance()
			}
		}
	case '{':
		s.advance()
		for {
			s.skipSpace(true)
			if s.peek() == '}' {
				s.advance()
				return
			}
			s.keyval(path)
			s.skipSpace(true)
			if s.peek() == ',' {
				s.advance()
			}
		}
	case '"', '\'':
		s.str()
	default:
		for !s.eof() {
			c := s.peek()
			if c == ' ' && s.i+1 < len(s.src) && isDigit(s.src[s.i+1]) && s.i >= 10 && s.src[s.i-3] == '-' {
				s.advance() // date-time with a space separator
				continue
			}
			if c == ',' || c == ']' || c == '}' || c == '#' || c == '\n' || c == ' ' || c == '\t' || c == '\r' {
				return
			}
			s.advance()
		}
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// str scans a basic, literal or multi-line string and returns its
// contents (escapes decoded only for the simple cases keys use).
func (s *scanner) str() string {
	q := s.peek()
	if strings.HasPrefix(s.src[s.i:], strings.Repeat(string(q), 3)) {
		delim := strings.Repeat(string(q), 3)
		for range 3 {
			s.advance()
		}
		start := s.i
		for !s.eof() && !strings.HasPrefix(s.src[s.i:], delim) {
			if q == '"' && s.peek() == '\\' {
				s.advance()
			}
			s.advance()
		}
		end := s.i
		for range 3 {
			s.advance()
		}
		for s.peek() == q { // up to two quotes may close the content
			s.advance()
			end++
		}
		return s.src[start:end]
	}
	s.advance()
	start := s.i
	for !s.eof() && s.peek() != q && s.peek() != '\n' {
		if q == '"' && s.peek() == '\\' {
			s.advance()
		}
		s.advance()
	}
	raw := s.src[start:s.i]
	s.advance()
	if q == '"' {
		if u, err := strconv.Unquote(`"` + raw + `"`); err == nil {
			return u
		}
	}
	return raw
}
