package safetensors

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"peftbench/internal/atomicfile"
	"peftbench/internal/pyfmt"
)

// ShardName is the file name save_pretrained gives shard i (0-based) of n:
// model-00001-of-00003.safetensors.
func ShardName(i, n int) string {
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, n)
}

// WriteModel writes tensors into the folder dir as a Hugging Face model:
// model.safetensors when shards ≤ 1, else shards files named by ShardName
// plus model.safetensors.index.json. Tensors keep their given order across
// shards (contiguous runs, each shard closing once it holds its share of
// the bytes, as save_pretrained fills shards in state-dict order), and
// every shard gets the same metadata. The index is written as
// transformers writes it: {"metadata": {"total_size": bytes of tensor
// data}, "weight_map": {name: shard}}, keys sorted, indented by two
// spaces, a final newline. It returns the files written, in order.
func WriteModel(dir string, tensors []Tensor, shards int, metadata map[string]string) ([]string, error) {
	if shards <= 1 {
		path := filepath.Join(dir, ModelFile)
		return []string{path}, WriteFile(path, tensors, metadata)
	}
	if shards > len(tensors) {
		return nil, fmt.Errorf("safetensors: %s: %d shards for %d tensors: a shard would be empty", dir, shards, len(tensors))
	}
	size := func(t *Tensor) int64 { return int64(len(t.Data)) * int64(t.dtype().Bits()/8) }
	var total int64
	for i := range tensors {
		total += size(&tensors[i])
	}
	// Shard s ends after the first tensor whose cumulative size reaches
	// (s+1)/shards of the total, leaving at least one tensor per later shard.
	var runs [][]Tensor
	start := 0
	var cum int64
	for i := range tensors {
		cum += size(&tensors[i])
		s := len(runs)
		left := len(tensors) - i - 1 // tensors after this one
		need := shards - s - 1       // shards still to fill after this one
		if s < shards-1 && (cum*int64(shards) >= total*int64(s+1) || left == need) {
			runs = append(runs, tensors[start:i+1])
			start = i + 1
		}
	}
	runs = append(runs, tensors[start:])
	var files []string
	wmap := map[string]string{}
	for s, run := range runs {
		name := ShardName(s, shards)
		path := filepath.Join(dir, name)
		if err := WriteFile(path, run, metadata); err != nil {
			return nil, err
		}
		files = append(files, path)
		for _, t := range run {
			wmap[t.Name] = name
		}
	}
	index := filepath.Join(dir, IndexFile)
	if err := atomicfile.WriteFile(index, indexJSON(total, wmap)); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return append(files, index), nil
}

// indexJSON renders the index as Python's json.dumps(index, indent=2,
// sort_keys=True) + "\n" does (names are escaped as JSON with non-ASCII
// as \uXXXX, Python's ensure_ascii).
func indexJSON(total int64, wmap map[string]string) []byte {
	var b strings.Builder
	b.WriteString("{\n  \"metadata\": {\n    \"total_size\": ")
	b.WriteString(strconv.FormatInt(total, 10))
	b.WriteString("\n  },\n  \"weight_map\": {")
	names := make([]string, 0, len(wmap))
	for n := range wmap {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    ")
		b.WriteString(pyfmt.QuoteString(n, true))
		b.WriteString(": ")
		b.WriteString(pyfmt.QuoteString(wmap[n], true))
	}
	if len(names) > 0 {
		b.WriteString("\n  ")
	}
	b.WriteString("}\n}\n")
	return []byte(b.String())
}
