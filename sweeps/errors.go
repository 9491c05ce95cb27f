package sweeps

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"peftbench/internal/options"
	"peftbench/internal/suggest"
)

// Error is one problem in a sweep file, located at File:Line:Col and, when
// it concerns a key, naming the key path ("grid.method[1]",
// "include[0].rank").
type Error struct {
	File      string
	Line, Col int
	Key       string
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sweeps: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// OptionError is what a Catalog returns when a method or task option is
// invalid, so that the sweep error can point at the key that set it (the
// registries' own error type, internal/options).
type OptionError = options.OptionError

// errs collects located errors, dropping exact duplicates (the same bad
// value reached through many trials is reported once).
type errs struct {
	file string
	ps   *positions
	list []*Error
	seen map[string]bool
}

// atKey records an error located at the key of path.
func (es *errs) atKey(path, format string, args ...any) {
	es.add(es.ps.key(path), path, fmt.Sprintf(format, args...))
}

// atVal records an error located at the value of path.
func (es *errs) atVal(path, format string, args ...any) {
	es.add(es.ps.val(path), path, fmt.Sprintf(format, args...))
}

func (es *errs) add(p pos, path, msg string) {
	e := &Error{File: es.file, Line: p.line, Col: p.col, Key: path, Msg: msg}
	s := e.Error()
	if es.seen == nil {
		es.seen = map[string]bool{}
	}
	if es.seen[s] {
		return
	}
	es.seen[s] = true
	es.list = append(es.list, e)
}

func (es *errs) empty() bool { return len(es.list) == 0 }

// err returns the collected errors sorted by position, joined; nil if none.
func (es *errs) err() error {
	if len(es.list) == 0 {
		return nil
	}
	list := slices.Clone(es.list)
	slices.SortStableFunc(list, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	if len(list) == 1 {
		return list[0]
	}
	e := make([]error, len(list))
	for i, x := range list {
		e[i] = x
	}
	return errors.Join(e...)
}

// didYouMean returns " (did you mean "x"?)" for the candidate nearest to s, or
// "" when none is close enough to be a likely typo.
func didYouMean(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := suggest.Distance(strings.ToLower(s), strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 {
		return ""
	}
	limit := max(1, min(len(s), len(best))/3)
	if bestD > limit && !strings.HasPrefix(strings.ToLower(best), strings.ToLower(s)) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
