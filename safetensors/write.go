package safetensors

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"peftbench/internal/atomicfile"
)

// Tensor is a named float32 tensor to write, stored as DType (F32 when
// empty; F16, BF16 and F64 round from float32 to nearest even).
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []float32
}

// Write writes tensors and metadata in the safetensors format. The bytes are
// deterministic: tensors ordered by dtype size then name as the reference
// implementation orders them, metadata keys sorted, the header padded with
// spaces to a multiple of 8 bytes.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	hdr, order, err := buildHeader(tensors, metadata)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, chunkSize)
	var nb [8]byte
	binary.LittleEndian.PutUint64(nb[:], uint64(len(hdr)))
	bw.Write(nb[:])
	bw.Write(hdr)
	buf := make([]byte, 0, chunkSize)
	for _, i := range order {
		t := &tensors[i]
		dt := t.dtype()
		step := chunkSize / (dt.Bits() / 8)
		for d := t.Data; len(d) > 0; {
			n := min(len(d), step)
			buf = encode(buf[:0], d[:n], dt)
			if _, err := bw.Write(buf); err != nil {
				return fmt.Errorf("safetensors: %w", err)
			}
			d = d[n:]
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// WriteFile writes tensors and metadata to path atomically: to a temporary
// file in the same folder, synced, then renamed over path.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	var werr error // Write's own error, already prefixed
	err := atomicfile.Write(path, func(w io.Writer) error {
		werr = Write(w, tensors, metadata)
		return werr
	})
	switch {
	case werr != nil:
		return fmt.Errorf("%w (writing %s)", werr, path)
	case err != nil:
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

func (t *Tensor) dtype() DType {
	if t.DType == "" {
		return F32
	}
	return t.DType
}

// buildHeader validates the tensors and returns the padded JSON header and
// the order in which their data follows it.
func buildHeader(tensors []Tensor, metadata map[string]string) ([]byte, []int, error) {
	seen := make(map[string]bool, len(tensors))
	for i := range tensors {
		t := &tensors[i]
		switch {
		case t.Name == "" || t.Name == metadataKey:
			return nil, nil, fmt.Errorf("safetensors: tensor %d: invalid name %q", i, t.Name)
		case !utf8.ValidString(t.Name):
			return nil, nil, fmt.Errorf("safetensors: tensor %q: name is not valid UTF-8", t.Name)
		case seen[t.Name]:
			return nil, nil, fmt.Errorf("safetensors: tensor %q: duplicate name", t.Name)
		case !t.dtype().Float():
			return nil, nil, fmt.Errorf("safetensors: tensor %q: cannot write dtype %q (want F32, F16, BF16 or F64)", t.Name, t.DType)
		}
		seen[t.Name] = true
		n := 1
		for _, d := range t.Shape {
			if d < 0 || d != 0 && n > math.MaxInt/d {
				return nil, nil, fmt.Errorf("safetensors: tensor %q: invalid shape %v", t.Name, t.Shape)
			}
			n *= d
		}
		if n != len(t.Data) {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: shape %v has %d elements, data %d", t.Name, t.Shape, n, len(t.Data))
		}
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("safetensors: metadata %q: not valid UTF-8", k)
		}
	}
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &tensors[i], &tensors[j]
		if c := dtypeInfo[b.dtype()].rank - dtypeInfo[a.dtype()].rank; c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})

	var h []byte
	h = append(h, '{')
	if len(metadata) > 0 {
		h = appendString(h, metadataKey)
		h = append(h, ":{"...)
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				h = append(h, ',')
			}
			h = appendString(h, k)
			h = append(h, ':')
			h = appendString(h, metadata[k])
		}
		h = append(h, '}')
	}
	var off int64
	for _, i := range order {
		t := &tensors[i]
		if len(h) > 1 {
			h = append(h, ',')
		}
		h = appendString(h, t.Name)
		h = append(h, `:{"dtype":`...)
		h = appendString(h, string(t.dtype()))
		h = append(h, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				h = append(h, ',')
			}
			h = strconv.AppendInt(h, int64(d), 10)
		}
		end := off + int64(len(t.Data))*int64(t.dtype().Bits()/8)
		h = append(h, `],"data_offsets":[`...)
		h = strconv.AppendInt(h, off, 10)
		h = append(h, ',')
		h = strconv.AppendInt(h, end, 10)
		h = append(h, "]}"...)
		off = end
	}
	h = append(h, '}')
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	if len(h) > MaxHeaderSize {
		return nil, nil, fmt.Errorf("safetensors: header of %d bytes exceeds the %d-byte limit", len(h), MaxHeaderSize)
	}
	return h, order, nil
}

// appendString appends s as a JSON string escaped as serde_json escapes it:
// quote, backslash and control characters only, \u00xx in lower case.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
