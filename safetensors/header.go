package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxHeaderSize bounds the JSON header, as in the reference implementation.
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding free-form string metadata.
const metadataKey = "__metadata__"

// Info describes one tensor of a file.
type Info struct {
	Name  string
	DType DType
	Shape []int
	// Offsets are the tensor's [begin, end) byte offsets within the byte
	// buffer that follows the header.
	Offsets [2]int64
}

// NumElements reports the product of the shape (1 for a scalar).
func (in Info) NumElements() int {
	n := 1
	for _, d := range in.Shape {
		n *= d
	}
	return n
}

// header is a parsed and validated header.
type header struct {
	tensors  []Info         // sorted by name
	index    map[string]int // name → position in tensors
	metadata map[string]string
}

// fieldError is a validation failure at a tensor or header field.
type fieldError struct {
	tensor string // "" when not about one tensor
	field  string // "" when about the whole tensor
	err    error
}

func (e *fieldError) Error() string {
	var b strings.Builder
	if e.tensor != "" {
		fmt.Fprintf(&b, "tensor %q: ", e.tensor)
	}
	if e.field != "" {
		b.WriteString(e.field + ": ")
	}
	b.WriteString(e.err.Error())
	return b.String()
}

func (e *fieldError) Unwrap() error { return e.err }

func errAt(tensor, field, format string, args ...any) error {
	return &fieldError{tensor, field, fmt.Errorf(format, args...)}
}

// parseHeader parses the JSON header h and validates it against a byte
// buffer of bufLen bytes.
func parseHeader(h []byte, bufLen uint64) (*header, error) {
	if len(h) == 0 || h[0] != '{' {
		return nil, errors.New("header does not start with '{'")
	}
	if !utf8.Valid(h) {
		return nil, errors.New("header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(h))
	dec.UseNumber()
	hd := &header{index: map[string]int{}}
	seenMeta := false
	err := walkObject(dec, "header", func(key string) error {
		if key == metadataKey {
			if seenMeta {
				return errAt("", metadataKey, "duplicate key")
			}
			seenMeta = true
			m, err := parseMetadata(dec)
			if err != nil {
				return &fieldError{"", metadataKey, err}
			}
			hd.metadata = m
			return nil
		}
		if _, dup := hd.index[key]; dup {
			return errAt(key, "", "duplicate tensor name")
		}
		info, err := parseInfo(dec, key)
		if err != nil {
			return err
		}
		hd.index[key] = len(hd.tensors)
		hd.tensors = append(hd.tensors, info)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if tok, err := dec.Token(); err != io.EOF { // the only place EOF is expected
		if err != nil {
			return nil, fmt.Errorf("header: after the object: %w", err)
		}
		return nil, fmt.Errorf("header: unexpected %s after the object", describe(tok))
	}
	if err := validateLayout(hd.tensors, bufLen); err != nil {
		return nil, err
	}
	slices.SortFunc(hd.tensors, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	for i, t := range hd.tensors {
		hd.index[t.Name] = i
	}
	return hd, nil
}

// walkObject reads one JSON object from dec, calling f with each key while
// the decoder is positioned at that key's value; f must consume the value.
func walkObject(dec *json.Decoder, what string, f func(key string) error) error {
	tok, err := token(dec)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%s: want a JSON object, got %s", what, describe(tok))
	}
	return walkMembers(dec, what, f)
}

// walkMembers is walkObject after the opening '{' has been read.
func walkMembers(dec *json.Decoder, what string, f func(key string) error) error {
	for dec.More() {
		tok, err := token(dec)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("%s: want a key, got %s", what, describe(tok))
		}
		if err := f(key); err != nil {
			return err
		}
	}
	if _, err := token(dec); err != nil { // the closing '}'
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// token reads the next JSON token; the input ending inside a value is an
// unexpected EOF, not a clean one.
func token(dec *json.Decoder) (json.Token, error) {
	tok, err := dec.Token()
	if err == io.EOF {
		err = errors.New("unexpected end of JSON")
	}
	return tok, err
}

// describe names a JSON token's kind for error messages.
func describe(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return "'" + t.String() + "'"
	case string:
		return "a string"
	case json.Number:
		return "the number " + t.String()
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

// scalarString reads a JSON string value.
func scalarString(dec *json.Decoder) (string, error) {
	tok, err := token(dec)
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %s", describe(tok))
	}
	return s, nil
}

// parseMetadata reads the __metadata__ value: null or an object of strings.
func parseMetadata(dec *json.Decoder) (map[string]string, error) {
	tok, err := token(dec)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("want an object of strings, got %s", describe(tok))
	}
	m := map[string]string{}
	err = walkMembers(dec, "object", func(key string) error {
		if _, dup := m[key]; dup {
			return fmt.Errorf("key %q: duplicate key", key)
		}
		v, err := scalarString(dec)
		if err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		m[key] = v
		return nil
	})
	return m, err
}

// parseInfo reads one tensor's {"dtype", "shape", "data_offsets"} object.
func parseInfo(dec *json.Decoder, name string) (Info, error) {
	info := Info{Name: name}
	var seen [3]bool
	var shape []uint64
	err := walkObject(dec, fmt.Sprintf("tensor %q", name), func(key string) error {
		var i int
		switch key {
		case "dtype":
			i = 0
		case "shape":
			i = 1
		case "data_offsets":
			i = 2
		default:
			return errAt(name, key, "unknown field")
		}
		if seen[i] {
			return errAt(name, key, "duplicate field")
		}
		seen[i] = true
		switch i {
		case 0:
			s, err := scalarString(dec)
			if err != nil {
				return &fieldError{name, key, err}
			}
			if !DType(s).Known() {
				return errAt(name, key, "unknown dtype %q", s)
			}
			info.DType = DType(s)
		case 1:
			var err error
			if shape, err = uintArray(dec); err != nil {
				return &fieldError{name, key, err}
			}
		case 2:
			off, err := uintArray(dec)
			if err != nil {
				return &fieldError{name, key, err}
			}
			if len(off) != 2 {
				return errAt(name, key, "want [begin, end], got %d numbers", len(off))
			}
			if off[0] > math.MaxInt64 || off[1] > math.MaxInt64 {
				return errAt(name, key, "offsets %v out of range", off)
			}
			info.Offsets = [2]int64{int64(off[0]), int64(off[1])}
		}
		return nil
	})
	if err != nil {
		return info, err
	}
	for i, f := range []string{"dtype", "shape", "data_offsets"} {
		if !seen[i] {
			return info, errAt(name, f, "missing field")
		}
	}
	// Element count, overflow-checked in shape order as the reference does.
	n := uint64(1)
	for _, d := range shape {
		if d != 0 && n > math.MaxUint64/d {
			return info, errAt(name, "shape", "element count of %v overflows", shape)
		}
		n *= d
	}
	nbytes, err := info.DType.byteSize(n)
	if err != nil {
		return info, &fieldError{name, "shape", err}
	}
	begin, end := info.Offsets[0], info.Offsets[1]
	if end < begin {
		return info, errAt(name, "data_offsets", "end %d before begin %d", end, begin)
	}
	if uint64(end-begin) != nbytes {
		return info, errAt(name, "data_offsets", "[%d, %d] holds %d bytes, but shape %v of %s needs %d",
			begin, end, end-begin, shape, info.DType, nbytes)
	}
	// Every dimension fits in an int now unless another is zero.
	info.Shape = make([]int, len(shape))
	for i, d := range shape {
		if d > math.MaxInt {
			return info, errAt(name, "shape", "dimension %d too large", d)
		}
		info.Shape[i] = int(d)
	}
	return info, nil
}

// uintArray reads a JSON array of unsigned integers.
func uintArray(dec *json.Decoder) ([]uint64, error) {
	tok, err := token(dec)
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("want an array of unsigned integers, got %s", describe(tok))
	}
	var out []uint64
	for dec.More() {
		tok, err := token(dec)
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("element %d: want an unsigned integer, got %s", len(out), describe(tok))
		}
		v, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("element %d: %s is not an unsigned 64-bit integer", len(out), num)
		}
		out = append(out, v)
	}
	if _, err := token(dec); err != nil {
		return nil, err
	}
	return out, nil
}

// validateLayout checks that the tensors' byte ranges tile [0, bufLen)
// exactly: sorted by offsets, each begins where the previous ended.
func validateLayout(tensors []Info, bufLen uint64) error {
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := tensors[i], tensors[j]
		if c := cmpInt64(a.Offsets[0], b.Offsets[0]); c != 0 {
			return c
		}
		if c := cmpInt64(a.Offsets[1], b.Offsets[1]); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	var pos int64
	prev := ""
	for _, i := range order {
		t := tensors[i]
		begin, end := t.Offsets[0], t.Offsets[1]
		if uint64(end) > bufLen {
			return errAt(t.Name, "data_offsets", "[%d, %d] beyond the %d-byte buffer", begin, end, bufLen)
		}
		switch {
		case begin < pos:
			return errAt(t.Name, "data_offsets", "[%d, %d] overlaps tensor %q, which ends at %d", begin, end, prev, pos)
		case begin > pos && prev == "":
			return errAt(t.Name, "data_offsets", "[%d, %d] leaves bytes [0, %d) unused", begin, end, begin)
		case begin > pos:
			return errAt(t.Name, "data_offsets", "[%d, %d] leaves a gap after tensor %q, which ends at %d", begin, end, prev, pos)
		}
		pos, prev = end, t.Name
	}
	if uint64(pos) != bufLen {
		return fmt.Errorf("byte buffer: tensors cover [0, %d) of %d bytes", pos, bufLen)
	}
	return nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
