package lmfolder

import (
	"fmt"
	"os"
	"path/filepath"

	"peftbench/internal/atomicfile"
	"peftbench/safetensors"
)

// Folder file names besides the weights.
const (
	ConfigFile           = "config.json"
	GenerationConfigFile = "generation_config.json"
	TokenizerFile        = "tokenizer.json"
	TokenizerConfigFile  = "tokenizer_config.json"
)

// Write writes the checkpoint s describes into dir, which must be absent
// or empty: config.json, model.safetensors (or s.Shards shards and
// model.safetensors.index.json), tokenizer.json, tokenizer_config.json and
// generation_config.json. It returns the files written and the resolved
// Spec (defaults filled in).
func Write(dir string, s Spec) ([]string, Spec, error) {
	s, f, err := s.resolved()
	if err != nil {
		return nil, s, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, s, fmt.Errorf("lmfolder: %s: not empty (remove it or choose another folder)", dir)
	}
	tok, err := trainBPE(s.Family, s.Vocab)
	if err != nil {
		return nil, s, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, s, fmt.Errorf("lmfolder: %w", err)
	}
	files, err := safetensors.WriteModel(dir, s.tensors(), s.Shards, map[string]string{"format": "pt"})
	if err != nil {
		return nil, s, err
	}
	for _, w := range []struct {
		name string
		data []byte
	}{
		{ConfigFile, s.configJSON(f, tok)},
		{GenerationConfigFile, s.generationConfigJSON(tok)},
		{TokenizerFile, tok.tokenizerJSON()},
		{TokenizerConfigFile, tok.tokenizerConfigJSON(s.Seq)},
	} {
		path := filepath.Join(dir, w.name)
		if err := atomicfile.WriteFile(path, w.data); err != nil {
			return nil, s, fmt.Errorf("lmfolder: %w", err)
		}
		files = append(files, path)
	}
	return files, s, nil
}
