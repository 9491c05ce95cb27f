package safetensors

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeT(t *testing.T, path string, ts ...Tensor) {
	t.Helper()
	if err := WriteFile(path, ts, nil); err != nil {
		t.Fatal(err)
	}
}

func writeS(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func vec(name string, v ...float32) Tensor { return Tensor{Name: name, Shape: []int{len(v)}, Data: v} }

func TestOpenModel(t *testing.T) {
	dir := t.TempDir()
	// A single file, given as a file.
	file := filepath.Join(dir, "one.safetensors")
	writeT(t, file, vec("a", 1), vec("b", 2, 3))
	// A folder with model.safetensors.
	single := filepath.Join(dir, "single")
	os.Mkdir(single, 0o755)
	writeT(t, filepath.Join(single, ModelFile), vec("a", 1), vec("b", 2, 3))
	// A sharded folder.
	sharded := filepath.Join(dir, "sharded")
	os.Mkdir(sharded, 0o755)
	writeT(t, filepath.Join(sharded, "model-00001-of-00002.safetensors"), vec("a", 1))
	writeT(t, filepath.Join(sharded, "model-00002-of-00002.safetensors"), vec("b", 2, 3))
	writeS(t, filepath.Join(sharded, IndexFile), `{"metadata":{"total_size":12,"format":"pt"},
		"weight_map":{"b":"model-00002-of-00002.safetensors","a":"model-00001-of-00002.safetensors"}}`)

	for _, path := range []string{file, single, sharded} {
		m, err := OpenModel(path)
		if err != nil {
			t.Fatalf("OpenModel(%s): %v", path, err)
		}
		if got := m.Names(); !reflect.DeepEqual(got, []string{"a", "b"}) {
			t.Errorf("%s: Names = %q", path, got)
		}
		b, shape, err := m.Tensor("b")
		if err != nil || !reflect.DeepEqual(b, []float32{2, 3}) || !reflect.DeepEqual(shape, []int{2}) {
			t.Errorf("%s: Tensor(b) = %v %v %v", path, b, shape, err)
		}
		if _, err := m.Info("c"); err == nil || !strings.Contains(err.Error(), `no tensor "c"`) {
			t.Errorf("%s: Info(c): %v", path, err)
		}
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	}
	m, err := OpenModel(sharded)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got, want := m.Metadata(), map[string]string{"total_size": "12", "format": "pt"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sharded Metadata = %q, want %q", got, want)
	}
	if got := len(m.Shards()); got != 2 {
		t.Errorf("sharded: %d shards, want 2", got)
	}
}

func TestOpenModelRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		index string
		want  string
	}{
		{"missing shard", `{"weight_map":{"a":"s1.safetensors","b":"nope.safetensors"}}`, "nope.safetensors: no such file"},
		{"tensor not in shard", `{"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}}`, `weight_map: tensor "b": not in shard s1.safetensors`},
		{"unmapped tensor", `{"weight_map":{"a":"s1.safetensors"}}`, `shard s1.safetensors holds tensor "x"`},
		{"path escape", `{"weight_map":{"a":"../s1.safetensors"}}`, `shard "../s1.safetensors" is not a file name`},
		{"duplicate key", `{"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}}`, `tensor "a": duplicate key`},
		{"missing weight_map", `{"metadata":{}}`, "weight_map: missing field"},
		{"unknown field", `{"weight_map":{},"extra":1}`, "extra: unknown field"},
		{"not json", `{"weight_map":`, "index"},
		{"shard not string", `{"weight_map":{"a":1}}`, `tensor "a": want a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeT(t, filepath.Join(dir, "s1.safetensors"), vec("a", 1), vec("x", 1))
			writeT(t, filepath.Join(dir, "s2.safetensors"), vec("b", 1))
			writeS(t, filepath.Join(dir, IndexFile), tc.index)
			m, err := OpenModel(dir)
			if err == nil {
				m.Close()
				t.Fatal("OpenModel accepted it")
			}
			if !strings.HasPrefix(err.Error(), "safetensors: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := OpenModel(t.TempDir()); err == nil || !strings.Contains(err.Error(), "neither model.safetensors nor") {
		t.Errorf("empty folder: %v", err)
	}
}
