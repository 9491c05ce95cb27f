package safetensors

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
)

// File is an opened safetensors file: its header parsed and validated, its
// tensor data read on demand.
type File struct {
	name      string // path, or "" for an unnamed reader
	r         io.ReaderAt
	closer    io.Closer
	dataStart int64
	h         *header
}

// Source is what a single file and a sharded model have in common.
type Source interface {
	Names() []string
	Info(name string) (Info, error)
	Tensor(name string) ([]float32, []int, error)
	ReadInto(name string, dst []float32) error
	Metadata() map[string]string
}

var (
	_ Source = (*File)(nil)
	_ Source = (*Model)(nil)
)

// Open opens the safetensors file at path and validates its header. The
// caller closes the File.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	sf, err := read(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	sf.closer = f
	return sf, nil
}

// Read reads and validates the header of the size-byte safetensors data in
// r. Tensor data is read from r when asked for, so r must stay usable for
// the File's lifetime.
func Read(r io.ReaderAt, size int64) (*File, error) { return read("", r, size) }

func read(name string, r io.ReaderAt, size int64) (*File, error) {
	f := &File{name: name, r: r}
	if size < 8 {
		return nil, f.errorf("%d bytes is too small for the 8-byte header length", max(size, 0))
	}
	var nb [8]byte
	if err := readFull(r, nb[:], 0); err != nil {
		return nil, f.errorf("reading header length: %v", err)
	}
	n := binary.LittleEndian.Uint64(nb[:])
	if n > MaxHeaderSize {
		return nil, f.errorf("header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(size-8) {
		return nil, f.errorf("header length %d exceeds the %d bytes after the length", n, size-8)
	}
	hb := make([]byte, n) // bounded by size just above
	if err := readFull(r, hb, 8); err != nil {
		return nil, f.errorf("reading header: %v", err)
	}
	f.dataStart = 8 + int64(n)
	h, err := parseHeader(hb, uint64(size-f.dataStart))
	if err != nil {
		return nil, f.errorf("%v", err)
	}
	f.h = h
	return f, nil
}

// readFull reads exactly len(b) bytes at off.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// errorf formats an error prefixed with the package and the file name.
func (f *File) errorf(format string, args ...any) error {
	if f.name == "" {
		return fmt.Errorf("safetensors: "+format, args...)
	}
	return fmt.Errorf("safetensors: %s: "+format, append([]any{f.name}, args...)...)
}

// Close closes the underlying file when the File came from Open.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// Names lists the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, len(f.h.tensors))
	for i, t := range f.h.tensors {
		names[i] = t.Name
	}
	return names
}

// Len reports the number of tensors.
func (f *File) Len() int { return len(f.h.tensors) }

// Metadata returns a copy of the header's __metadata__ (nil when absent).
func (f *File) Metadata() map[string]string { return maps.Clone(f.h.metadata) }

// Info describes the named tensor.
func (f *File) Info(name string) (Info, error) {
	i, ok := f.h.index[name]
	if !ok {
		return Info{}, f.errorf("no tensor %q", name)
	}
	t := f.h.tensors[i]
	t.Shape = slices.Clone(t.Shape)
	return t, nil
}

// Raw reads the named tensor's bytes as stored (little-endian).
func (f *File) Raw(name string) ([]byte, error) {
	t, err := f.Info(name)
	if err != nil {
		return nil, err
	}
	b := make([]byte, t.Offsets[1]-t.Offsets[0]) // within the checked input size
	if err := readFull(f.r, b, f.dataStart+t.Offsets[0]); err != nil {
		return nil, f.errorf("tensor %q: %v", name, err)
	}
	return b, nil
}

// Tensor reads the named tensor, converted to float32 from F32, F16, BF16
// or F64, and returns it with its shape.
func (f *File) Tensor(name string) ([]float32, []int, error) {
	t, err := f.Info(name)
	if err != nil {
		return nil, nil, err
	}
	if !t.DType.Float() {
		return nil, nil, f.errorf("tensor %q: dtype %s does not convert to float32 (use Raw)", name, t.DType)
	}
	// The element count is justified: the byte range was checked against
	// the input size and equals count × element size.
	dst := make([]float32, t.NumElements())
	if err := f.readInto(t, dst); err != nil {
		return nil, nil, err
	}
	return dst, t.Shape, nil
}

// ReadInto reads the named tensor into dst, converted to float32; dst's
// length must equal the tensor's element count.
func (f *File) ReadInto(name string, dst []float32) error {
	t, err := f.Info(name)
	if err != nil {
		return err
	}
	if !t.DType.Float() {
		return f.errorf("tensor %q: dtype %s does not convert to float32 (use Raw)", name, t.DType)
	}
	if n := t.NumElements(); len(dst) != n {
		return f.errorf("tensor %q: shape %v has %d elements, destination %d", name, t.Shape, n, len(dst))
	}
	return f.readInto(t, dst)
}

// chunkSize bounds the staging buffer for conversion; a multiple of every
// element size.
const chunkSize = 64 << 10

func (f *File) readInto(t Info, dst []float32) error {
	size := t.DType.Bits() / 8
	buf := make([]byte, min(chunkSize, t.Offsets[1]-t.Offsets[0]))
	off := f.dataStart + t.Offsets[0]
	for len(dst) > 0 {
		n := min(len(dst), len(buf)/size)
		b := buf[:n*size]
		if err := readFull(f.r, b, off); err != nil {
			return f.errorf("tensor %q: %v", t.Name, err)
		}
		decode(dst[:n], b, t.DType)
		dst, off = dst[n:], off+int64(len(b))
	}
	return nil
}
