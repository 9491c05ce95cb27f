package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// File names of a Hugging Face model folder.
const (
	ModelFile = "model.safetensors"
	IndexFile = "model.safetensors.index.json"
)

// Model is a checkpoint that may be split over several shard files: a single
// .safetensors file, or a model folder.
type Model struct {
	path   string
	shards []*File          // in shard-name order
	where  map[string]*File // tensor → shard
	names  []string         // sorted
	meta   map[string]string
}

// OpenModel opens a checkpoint at path: a .safetensors file; a folder
// holding model.safetensors; or a folder holding
// model.safetensors.index.json, whose weight_map names the shard holding each
// tensor. As in transformers, a folder's model.safetensors wins over an
// index. Every shard must exist, hold exactly the tensors mapped to it, and
// be a plain file name inside the folder.
func OpenModel(path string) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.IsDir() {
		return single(path)
	}
	single1 := filepath.Join(path, ModelFile)
	if _, err := os.Stat(single1); err == nil {
		return single(single1)
	}
	index := filepath.Join(path, IndexFile)
	if _, err := os.Stat(index); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("safetensors: %s: neither %s nor %s found", path, ModelFile, IndexFile)
		}
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return sharded(path, index)
}

func single(path string) (*Model, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	m := &Model{path: path, shards: []*File{f}, where: map[string]*File{}, names: f.Names(), meta: f.Metadata()}
	for _, n := range m.names {
		m.where[n] = f
	}
	return m, nil
}

func sharded(dir, index string) (_ *Model, err error) {
	data, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	meta, wmap, err := parseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", index, err)
	}
	m := &Model{path: dir, where: map[string]*File{}, meta: meta}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	byShard := map[string][]string{}
	for _, kv := range wmap {
		byShard[kv[1]] = append(byShard[kv[1]], kv[0])
	}
	for _, shard := range slices.Sorted(maps.Keys(byShard)) {
		if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) {
			return nil, fmt.Errorf("safetensors: %s: weight_map: shard %q is not a file name in the folder", index, shard)
		}
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			return nil, fmt.Errorf("%w (shard of %s)", err, index)
		}
		m.shards = append(m.shards, f)
		for _, name := range byShard[shard] {
			if _, err := f.Info(name); err != nil {
				return nil, fmt.Errorf("safetensors: %s: weight_map: tensor %q: not in shard %s", index, name, shard)
			}
			m.where[name] = f
		}
		for _, name := range f.Names() {
			if g, ok := m.where[name]; !ok || g != f {
				return nil, fmt.Errorf("safetensors: %s: shard %s holds tensor %q, which weight_map does not map to it", index, shard, name)
			}
		}
	}
	m.names = slices.Sorted(maps.Keys(m.where))
	return m, nil
}

// parseIndex parses {"metadata": {...}, "weight_map": {"tensor": "shard"}},
// rejecting duplicate keys and unknown fields. Metadata values that are not
// strings are kept as their JSON text (total_size is a number).
func parseIndex(data []byte) (map[string]string, [][2]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var meta map[string]string
	var wmap [][2]string
	seen := map[string]bool{}
	err := walkObject(dec, "index", func(key string) error {
		if seen[key] {
			return fmt.Errorf("%s: duplicate key", key)
		}
		seen[key] = true
		switch key {
		case "metadata":
			var raw map[string]json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			meta = map[string]string{}
			for k, v := range raw {
				var s string
				if json.Unmarshal(v, &s) == nil {
					meta[k] = s
				} else {
					meta[k] = string(v)
				}
			}
		case "weight_map":
			names := map[string]bool{}
			return walkObject(dec, "weight_map", func(name string) error {
				if names[name] {
					return fmt.Errorf("weight_map: tensor %q: duplicate key", name)
				}
				names[name] = true
				shard, err := scalarString(dec)
				if err != nil {
					return fmt.Errorf("weight_map: tensor %q: %w", name, err)
				}
				wmap = append(wmap, [2]string{name, shard})
				return nil
			})
		default:
			return fmt.Errorf("%s: unknown field", key)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("unexpected data after the object")
	}
	if !seen["weight_map"] {
		return nil, nil, errors.New("weight_map: missing field")
	}
	return meta, wmap, nil
}

// Close closes every shard.
func (m *Model) Close() error {
	var errs []error
	for _, f := range m.shards {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// Names lists the tensor names over all shards, sorted.
func (m *Model) Names() []string { return slices.Clone(m.names) }

// Shards lists the shard files' paths.
func (m *Model) Shards() []string {
	p := make([]string, len(m.shards))
	for i, f := range m.shards {
		p[i] = f.name
	}
	return p
}

// FileOf returns the path of the shard file holding the named tensor, or
// the model's path when no shard holds it (for error messages).
func (m *Model) FileOf(name string) string {
	if f, ok := m.where[name]; ok && f.name != "" {
		return f.name
	}
	return m.path
}

// Metadata returns the single file's __metadata__, or a sharded model's
// index metadata.
func (m *Model) Metadata() map[string]string { return maps.Clone(m.meta) }

func (m *Model) shard(name string) (*File, error) {
	f, ok := m.where[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: no tensor %q", m.path, name)
	}
	return f, nil
}

// Info describes the named tensor.
func (m *Model) Info(name string) (Info, error) {
	f, err := m.shard(name)
	if err != nil {
		return Info{}, err
	}
	return f.Info(name)
}

// Tensor reads the named tensor from its shard, converted to float32.
func (m *Model) Tensor(name string) ([]float32, []int, error) {
	f, err := m.shard(name)
	if err != nil {
		return nil, nil, err
	}
	return f.Tensor(name)
}

// ReadInto reads the named tensor into dst, converted to float32.
func (m *Model) ReadInto(name string, dst []float32) error {
	f, err := m.shard(name)
	if err != nil {
		return err
	}
	return f.ReadInto(name, dst)
}

// Raw reads the named tensor's stored bytes.
func (m *Model) Raw(name string) ([]byte, error) {
	f, err := m.shard(name)
	if err != nil {
		return nil, err
	}
	return f.Raw(name)
}
