package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// craft builds a safetensors file byte by byte from the specification: the
// header length, the header text as given, the buffer.
func craft(header string, buf []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, buf...)
}

func f32bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func readBytes(b []byte) (*File, error) { return Read(bytes.NewReader(b), int64(len(b))) }

// TestWriteBytes checks the writer's exact output against a file assembled
// by hand from the specification and the reference implementation's layout.
func TestWriteBytes(t *testing.T) {
	var got bytes.Buffer
	err := Write(&got, []Tensor{
		{Name: "w", Shape: []int{2}, Data: []float32{1, 2}},
		{Name: "h", DType: F16, Shape: []int{1}, Data: []float32{1}},
		{Name: "b", Shape: []int{}, Data: []float32{-1}},
		{Name: "q\"<\n", DType: BF16, Shape: []int{1, 1}, Data: []float32{2}},
	}, map[string]string{"z": "1", "format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	hdr := `{"__metadata__":{"format":"pt","z":"1"},` +
		`"b":{"dtype":"F32","shape":[],"data_offsets":[0,4]},` +
		`"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},` +
		`"q\"<\n":{"dtype":"BF16","shape":[1,1],"data_offsets":[12,14]},` +
		`"h":{"dtype":"F16","shape":[1],"data_offsets":[14,16]}}`
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	want := craft(hdr, append(f32bytes(-1, 1, 2), 0x00, 0x40, 0x00, 0x3c))
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("Write:\n got %q\nwant %q", got.Bytes(), want)
	}
}

func TestRoundTrip(t *testing.T) {
	big := make([]float32, 3*chunkSize/2+7) // spans several conversion chunks
	for i := range big {
		big[i] = float32(i%512) - 256 // exact in F16 and BF16
	}
	in := []Tensor{
		{Name: "a.weight", Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, float32(math.Inf(1)), 0, 1e-30}},
		{Name: "scalar", Shape: []int{}, Data: []float32{42}},
		{Name: "empty", Shape: []int{0, 5}, Data: []float32{}},
		{Name: "half", DType: F16, Shape: []int{len(big)}, Data: big},
		{Name: "brain", DType: BF16, Shape: []int{len(big)}, Data: big},
		{Name: "double", DType: F64, Shape: []int{2}, Data: []float32{math.MaxFloat32, math.SmallestNonzeroFloat32}},
	}
	meta := map[string]string{"format": "pt", "note": "ünïcode \x01"}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteFile(path, in, meta); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("WriteFile left %d entries in the folder, want 1", len(ents))
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata(); !reflect.DeepEqual(got, meta) {
		t.Errorf("Metadata = %q, want %q", got, meta)
	}
	if got, want := f.Names(), []string{"a.weight", "brain", "double", "empty", "half", "scalar"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
	for _, tt := range in {
		data, shape, err := f.Tensor(tt.Name)
		if err != nil {
			t.Fatalf("Tensor(%q): %v", tt.Name, err)
		}
		if !reflect.DeepEqual(shape, tt.Shape) || !reflect.DeepEqual(data, tt.Data) {
			t.Errorf("Tensor(%q) = %v %v, want %v %v", tt.Name, shape, data[:min(len(data), 8)], tt.Shape, tt.Data[:min(len(tt.Data), 8)])
		}
		info, err := f.Info(tt.Name)
		if err != nil || info.DType != tt.dtype() || info.NumElements() != len(tt.Data) {
			t.Errorf("Info(%q) = %+v, %v", tt.Name, info, err)
		}
		dst := make([]float32, len(tt.Data))
		if err := f.ReadInto(tt.Name, dst); err != nil || !reflect.DeepEqual(dst, tt.Data) {
			t.Errorf("ReadInto(%q): %v", tt.Name, err)
		}
	}
	if err := f.ReadInto("scalar", make([]float32, 2)); err == nil || !strings.Contains(err.Error(), "destination 2") {
		t.Errorf("ReadInto with a wrong length: %v", err)
	}
	if _, _, err := f.Tensor("nope"); err == nil || !strings.Contains(err.Error(), `m.safetensors: no tensor "nope"`) {
		t.Errorf("Tensor(nope): %v", err)
	}
	raw, err := f.Raw("half")
	if err != nil || len(raw) != 2*len(big) || binary.LittleEndian.Uint16(raw[2:]) != F32ToF16(big[1]) {
		t.Errorf("Raw(half): %d bytes, %v", len(raw), err)
	}
}

func TestNonFloatDType(t *testing.T) {
	f, err := readBytes(craft(`{"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Tensor("i"); err == nil || !strings.Contains(err.Error(), `tensor "i": dtype I64 does not convert`) {
		t.Errorf("Tensor(I64): %v", err)
	}
	if raw, err := f.Raw("i"); err != nil || len(raw) != 8 {
		t.Errorf("Raw(I64) = %d bytes, %v", len(raw), err)
	}
}

func TestWriteErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tensors []Tensor
		meta    map[string]string
		want    string
	}{
		{"empty name", []Tensor{{Name: "", Data: []float32{1}}}, nil, `invalid name ""`},
		{"reserved name", []Tensor{{Name: "__metadata__", Data: []float32{1}}}, nil, "invalid name"},
		{"duplicate", []Tensor{{Name: "a", Data: []float32{1}}, {Name: "a", Data: []float32{1}}}, nil, `"a": duplicate name`},
		{"shape mismatch", []Tensor{{Name: "a", Shape: []int{2}, Data: []float32{1}}}, nil, "shape [2] has 2 elements, data 1"},
		{"negative dim", []Tensor{{Name: "a", Shape: []int{-1}}}, nil, "invalid shape"},
		{"dtype", []Tensor{{Name: "a", DType: I32, Data: []float32{1}}}, nil, `cannot write dtype "I32"`},
		{"bad utf8 name", []Tensor{{Name: "\xff", Data: []float32{1}}}, nil, "not valid UTF-8"},
		{"bad utf8 meta", nil, map[string]string{"k": "\xff"}, `metadata "k": not valid UTF-8`},
	} {
		err := Write(&bytes.Buffer{}, tc.tensors, tc.meta)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "safetensors: ") {
			t.Errorf("%s: Write error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// badFiles are malformed inputs, one or more per validation rule, with a
// part of the expected error.
var badFiles = []struct {
	name string
	data []byte
	want string
}{
	{"empty input", nil, "0 bytes is too small"},
	{"short input", []byte{1, 0, 0}, "3 bytes is too small"},
	{"header length over limit", binary.LittleEndian.AppendUint64(nil, 1<<40), "header length 1099511627776 exceeds the 100000000-byte limit"},
	{"header length past the end", append(binary.LittleEndian.AppendUint64(nil, 20), "{}"...), "header length 20 exceeds the 2 bytes"},
	{"header length max uint64", binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "exceeds the 100000000-byte limit"},
	{"empty header", craft("", nil), "does not start with '{'"},
	{"leading space", craft(" {}", nil), "does not start with '{'"},
	{"not utf8", craft("{\"\xff\":1}", nil), "not valid UTF-8"},
	{"truncated json", craft(`{"a":{"dtype":"F32"`, nil), `tensor "a"`},
	{"trailing data", craft(`{} {}`, nil), "after the object"},
	{"trailing garbage", craft(`{}x`, nil), "header"},
	{"tensor not object", craft(`{"a":[1]}`, nil), `tensor "a": want a JSON object, got an array`},
	{"duplicate tensor", craft(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, make([]byte, 8)), `tensor "a": duplicate tensor name`},
	{"duplicate metadata", craft(`{"__metadata__":{},"__metadata__":{}}`, nil), "__metadata__: duplicate key"},
	{"metadata value number", craft(`{"__metadata__":{"k":1}}`, nil), `__metadata__: key "k": want a string, got the number 1`},
	{"metadata value object", craft(`{"__metadata__":{"k":{}}}`, nil), `__metadata__: key "k": want a string, got an object`},
	{"metadata duplicate key", craft(`{"__metadata__":{"k":"1","k":"2"}}`, nil), `__metadata__: key "k": duplicate key`},
	{"metadata array", craft(`{"__metadata__":["k"]}`, nil), "__metadata__: want an object of strings, got an array"},
	{"unknown dtype", craft(`{"a":{"dtype":"F12","shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": dtype: unknown dtype "F12"`},
	{"dtype not string", craft(`{"a":{"dtype":32,"shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": dtype: want a string`},
	{"missing dtype", craft(`{"a":{"shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": dtype: missing field`},
	{"missing shape", craft(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": shape: missing field`},
	{"missing offsets", craft(`{"a":{"dtype":"F32","shape":[]}}`, make([]byte, 4)), `tensor "a": data_offsets: missing field`},
	{"unknown field", craft(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}}`, make([]byte, 4)), `tensor "a": x: unknown field`},
	{"duplicate field", craft(`{"a":{"dtype":"F32","dtype":"F32","shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": dtype: duplicate field`},
	{"negative dim", craft(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": shape: element 0: -1 is not an unsigned 64-bit integer`},
	{"float dim", craft(`{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}`, make([]byte, 4)), `shape: element 0: 1.0 is not`},
	{"string dim", craft(`{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}`, make([]byte, 4)), `shape: element 0: want an unsigned integer, got a string`},
	{"shape not array", craft(`{"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": shape: want an array`},
	{"one offset", craft(`{"a":{"dtype":"F32","shape":[],"data_offsets":[4]}}`, make([]byte, 4)), `data_offsets: want [begin, end], got 1 numbers`},
	{"offset overflow", craft(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,18446744073709551615]}}`, make([]byte, 4)), `data_offsets: offsets [0 18446744073709551615] out of range`},
	{"end before begin", craft(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, make([]byte, 4)), `tensor "a": data_offsets: end 0 before begin 4`},
	{"size mismatch", craft(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": data_offsets: [0, 4] holds 4 bytes, but shape [2] of F32 needs 8`},
	{"shape overflow", craft(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": shape: element count of [4294967296 4294967296] overflows`},
	{"bytes overflow", craft(`{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": shape: 4611686018427387904 elements of F64 overflow`},
	{"sub-byte remainder", craft(`{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}`, make([]byte, 1)), `3 elements of F4 do not fill whole bytes`},
	{"huge shape, tiny file", craft(`{"a":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}`, make([]byte, 4)), `tensor "a": data_offsets: [0, 4398046511104] beyond the 4-byte buffer`},
	{"beyond buffer", craft(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), `beyond the 4-byte buffer`},
	{"overlap", craft(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), `tensor "b": data_offsets: [4, 8] overlaps tensor "a", which ends at 8`},
	{"same range", craft(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "b": data_offsets: [0, 4] overlaps tensor "a"`},
	{"gap", craft(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), `tensor "b": data_offsets: [8, 12] leaves a gap after tensor "a", which ends at 4`},
	{"leading gap", craft(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), `tensor "a": data_offsets: [4, 8] leaves bytes [0, 4) unused`},
	{"trailing bytes", craft(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 6)), `byte buffer: tensors cover [0, 4) of 6 bytes`},
	{"no tensors, stray bytes", craft(`{}`, make([]byte, 1)), `tensors cover [0, 0) of 1 bytes`},
}

func TestReadRejects(t *testing.T) {
	for _, tc := range badFiles {
		t.Run(tc.name, func(t *testing.T) {
			f, err := readBytes(tc.data)
			if err == nil {
				t.Fatalf("Read accepted it: %q", f.Names())
			}
			if !strings.HasPrefix(err.Error(), "safetensors: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Read error:\n %v\nwant one containing\n %s", err, tc.want)
			}
		})
	}
}

// TestOpenNamesFile checks errors from Open carry the path.
func TestOpenNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(path, craft(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if want := "safetensors: " + path + `: tensor "a": data_offsets:`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Open error %v, want prefix %q", err, want)
	}
}

func TestReadAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		buf          []byte
		names        []string
	}{
		{"empty", `{}`, nil, []string{}},
		{"padded", `{}      `, nil, []string{}},
		{"null metadata", `{"__metadata__":null}`, nil, []string{}},
		{"zero-size tensors share an offset", `{"b":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F16","shape":[3,0],"data_offsets":[0,0]}}`, nil, []string{"a", "b"}},
		{"out of order", `{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32bytes(1, 2), []string{"a", "b"}},
		{"sub-byte", `{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, []byte{0}, []string{"a"}},
		{"huge dim times zero", `{"a":{"dtype":"F32","shape":[0,1099511627776],"data_offsets":[0,0]}}`, nil, []string{"a"}},
	} {
		f, err := readBytes(craft(tc.header, tc.buf))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := f.Names(); !reflect.DeepEqual(got, tc.names) {
			t.Errorf("%s: Names = %q, want %q", tc.name, got, tc.names)
		}
	}
}

// TestHugeClaimsAllocateLittle reads files whose headers claim enormous
// tensors and checks the reader allocates in proportion to the input only.
func TestHugeClaimsAllocateLittle(t *testing.T) {
	for _, tc := range badFiles {
		if got := allocBytes(func() { readBytes(tc.data) }); got > allocBound(len(tc.data)) {
			t.Errorf("%s: Read of %d bytes allocated %d", tc.name, len(tc.data), got)
		}
	}
}

// allocBound is what reading an input of n bytes may allocate.
func allocBound(n int) uint64 { return 1<<20 + 64*uint64(n) }

func allocBytes(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func BenchmarkTensor(b *testing.B) {
	data := make([]float32, 1<<20)
	for i := range data {
		data[i] = float32(i)
	}
	for _, dt := range []DType{F32, F16, BF16} {
		var buf bytes.Buffer
		if err := Write(&buf, []Tensor{{Name: "x", DType: dt, Shape: []int{len(data)}, Data: data}}, nil); err != nil {
			b.Fatal(err)
		}
		f, err := readBytes(buf.Bytes())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(dt), func(b *testing.B) {
			dst := make([]float32, len(data))
			b.SetBytes(int64(4 * len(data)))
			for b.Loop() {
				if err := f.ReadInto("x", dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
