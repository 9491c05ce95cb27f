package lmfolder

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"peftbench/safetensors"
)

const python = "/usr/bin/python3"

// TestFolderTorch checks the written folders with testdata/check_lm.py,
// which derives every tensor's name and shape from config.json and the
// families' architectures on its own, reads the safetensors files with a
// hand-written reader into torch, and checks dtypes against the config,
// the index's total_size and weight_map, and the tokenizer's ids against
// the embedding rows. Covers each family, each dtype, one file and shards,
// and both config spellings. Catches a transposed Conv1D or Linear, a
// missing Qwen bias, an lm_head written for a tied model (or none for
// NeoX), GQA k/v sized for the query heads, a wrong total_size, and a
// vocabulary disagreeing with the embedding.
func TestFolderTorch(t *testing.T) {
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		t.Skipf("%s with torch unavailable (%v): the independent folder check skips", python, err)
	}
	root := t.TempDir()
	var dirs []string
	for i, c := range []Spec{
		{Family: "gpt2", DType: safetensors.F32},
		{Family: "gpt2", DType: safetensors.BF16, Shards: 3, Layers: 3, FFN: 96},
		{Family: "neox", DType: safetensors.F16},
		{Family: "neox", DType: safetensors.F32, Shards: 2, RopeParameters: true},
		{Family: "llama", DType: safetensors.BF16},
		{Family: "llama", DType: safetensors.F16, Shards: 4, Heads: 8, KVHeads: 2, RopeParameters: true},
		{Family: "qwen2", DType: safetensors.BF16, Shards: 2},
		{Family: "qwen2", DType: safetensors.F32, Heads: 4, KVHeads: 1},
	} {
		c.Seed = uint64(i)
		dir := filepath.Join(root, c.Family+string(rune('a'+i)))
		if _, _, err := Write(dir, c); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	out, err := exec.Command(python, append([]string{filepath.Join("testdata", "check_lm.py")}, dirs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("check_lm.py: %v\n%s", err, out)
	}
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var r struct {
			Dir            string
			Tensors        int
			Errors         []string
			MaxStd, MinStd float64 `json:"-"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if len(r.Errors) > 0 || r.Tensors == 0 {
			t.Errorf("%s: %d tensors, %v", r.Dir, r.Tensors, r.Errors)
		}
	}
}
