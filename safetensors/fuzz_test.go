package safetensors

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// fuzzSeeds are starting inputs: valid files of each dtype and the classic
// malformations. testdata/fuzz/FuzzRead holds the same, as files.
func fuzzSeeds() map[string][]byte {
	valid := func(ts ...Tensor) []byte {
		var b bytes.Buffer
		if err := Write(&b, ts, map[string]string{"format": "pt"}); err != nil {
			panic(err)
		}
		return b.Bytes()
	}
	v := []float32{1, -0.5, float32(math.Inf(1)), 6e-8, 3.14159, -65504}
	f32 := valid(Tensor{Name: "w", Shape: []int{2, 3}, Data: v}, Tensor{Name: "b", Shape: []int{3}, Data: v[:3]})
	return map[string][]byte{
		"valid_f32":        f32,
		"valid_f16":        valid(Tensor{Name: "w", DType: F16, Shape: []int{6}, Data: v}),
		"valid_bf16":       valid(Tensor{Name: "w", DType: BF16, Shape: []int{3, 2}, Data: v}),
		"valid_f64":        valid(Tensor{Name: "w", DType: F64, Shape: []int{6, 1}, Data: v}),
		"valid_mixed":      valid(Tensor{Name: "a", DType: F16, Shape: []int{1}, Data: v[:1]}, Tensor{Name: "b", Shape: []int{0}}, Tensor{Name: "c", DType: BF16, Shape: []int{}, Data: v[:1]}),
		"valid_empty":      craft("{}      ", nil),
		"valid_i64":        craft(`{"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)),
		"valid_f4":         craft(`{"i":{"dtype":"F4","shape":[2,1],"data_offsets":[0,1]}}`, []byte{0x12}),
		"truncated":        f32[:len(f32)-3],
		"truncated_header": f32[:20],
		"bad_offsets":      craft(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)),
		"huge_header_len":  []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'},
		"overlap":          craft(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)),
		"gap":              craft(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)),
		"huge_shape":       craft(`{"a":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}`, make([]byte, 4)),
		"overflow_shape":   craft(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}`, nil),
		"duplicate_tensor": craft(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, make([]byte, 8)),
		"metadata_non_str": craft(`{"__metadata__":{"k":1}}`, nil),
		"unknown_dtype":    craft(`{"a":{"dtype":"Q4","shape":[],"data_offsets":[0,1]}}`, make([]byte, 1)),
		"nested_deep":      craft(`{"__metadata__":{"k":[[[[[[[[]]]]]]]]}}`, nil),
	}
}

// FuzzRead checks that Read never panics, never allocates out of proportion
// to its input, and that what it accepts is consistent: the tensors tile the
// buffer, every float tensor converts, and writing them back and reading
// again gives the same values.
func FuzzRead(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var file *File
		var err error
		if got := allocBytes(func() { file, err = readBytes(data) }); got > allocBound(len(data)) {
			t.Fatalf("Read of %d bytes allocated %d", len(data), got)
		}
		if err != nil {
			return
		}
		var covered int64
		var rewrite []Tensor
		for _, name := range file.Names() {
			info, err := file.Info(name)
			if err != nil {
				t.Fatal(err)
			}
			covered += info.Offsets[1] - info.Offsets[0]
			if !info.DType.Float() {
				if _, err := file.Raw(name); err != nil {
					t.Fatal(err)
				}
				continue
			}
			var vals []float32
			if got := allocBytes(func() { vals, _, err = file.Tensor(name) }); got > allocBound(len(data)) {
				t.Fatalf("Tensor(%q) from %d bytes allocated %d", name, len(data), got)
			}
			if err != nil {
				t.Fatalf("Tensor(%q) of an accepted file: %v", name, err)
			}
			rewrite = append(rewrite, Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: vals})
		}
		if covered != int64(len(data))-file.dataStart {
			t.Fatalf("tensors cover %d bytes of a %d-byte buffer", covered, int64(len(data))-file.dataStart)
		}
		if len(rewrite) != file.Len() || file.Len() == 0 {
			return
		}
		var buf bytes.Buffer
		if err := Write(&buf, rewrite, file.Metadata()); err != nil {
			if _, reserved := file.h.index[""]; reserved {
				return // the writer refuses empty names the reader accepts
			}
			t.Fatalf("rewriting an accepted file: %v", err)
		}
		again, err := readBytes(buf.Bytes())
		if err != nil {
			t.Fatalf("reading a rewritten file: %v", err)
		}
		for _, r := range rewrite {
			vals, _, err := again.Tensor(r.Name)
			if err != nil {
				t.Fatal(err)
			}
			for i := range vals {
				if a, b := vals[i], r.Data[i]; a != b && !(a != a && b != b) {
					t.Fatalf("tensor %q[%d]: %g after rewrite, %g before", r.Name, i, a, b)
				}
			}
		}
	})
}

// TestFuzzCorpus checks the committed seed corpus matches fuzzSeeds; run
// with SAFETENSORS_UPDATE_CORPUS=1 to regenerate it.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRead")
	for name, b := range fuzzSeeds() {
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
		path := filepath.Join(dir, name)
		if os.Getenv("SAFETENSORS_UPDATE_CORPUS") != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is stale or missing (%v); regenerate with SAFETENSORS_UPDATE_CORPUS=1 go test -run TestFuzzCorpus", path, err)
		}
	}
}
