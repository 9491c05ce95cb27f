package lm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"peftbench/internal/atomicfile"
	"peftbench/safetensors"
)

// companions are the files of a checkpoint folder Save copies unchanged.
var companions = []string{
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
	"generation_config.json", "vocab.json", "merges.txt",
}

// Save writes the model as a checkpoint folder in dir: config.json as it
// was read, model.safetensors in F32 with the checkpoint's own tensor names
// and layout (GPT-2's Conv1D weights back to [in, out], its key prefix as
// the source file had it, no tied head, no buffers), and the source
// folder's tokenizer and generation files copied. Adapters are not merged:
// Save writes the base weights.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lm: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ConfigFile), m.Cfg.raw); err != nil {
		return fmt.Errorf("lm: %w", err)
	}
	ts := make([]safetensors.Tensor, 0, len(m.entries))
	for _, e := range m.entries {
		t := safetensors.Tensor{Name: m.fileName(e.name), DType: safetensors.F32, Shape: e.t.Shape, Data: e.t.Data}
		if e.conv1d {
			r, c := e.t.Shape[0], e.t.Shape[1]
			t.Shape = []int{c, r}
			t.Data = make([]float32, len(e.t.Data))
			transpose(t.Data, e.t.Data, r, c)
		}
		ts = append(ts, t)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, safetensors.ModelFile), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("lm: %w", err)
	}
	if m.Dir == "" || filepath.Clean(m.Dir) == filepath.Clean(dir) {
		return nil
	}
	for _, name := range companions {
		data, err := os.ReadFile(filepath.Join(m.Dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("lm: %w", err)
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, name), data); err != nil {
			return fmt.Errorf("lm: %w", err)
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
