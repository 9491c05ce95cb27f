package tasks

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"peftbench/lmfolder"
	"peftbench/safetensors"
)

// testCache is shared by the package's tests so that each base model is
// pretrained once per test run ($PEFTBENCH_TEST_CACHE keeps it between runs).
var testCache *Cache

// testOptions are the options the package's tests give a task that has no
// usable defaults: the lm task's tiny checkpoint and data (TestMain).
var testOptions = map[string]map[string]any{}

// writeTinyLM writes a tiny checkpoint of family (F32, spec's sizes over
// the family's defaults) into dir/model and lmfolder's demo data into
// dir/data, and returns lm task options for them.
func writeTinyLM(dir, family string, spec lmfolder.Spec) (map[string]any, error) {
	spec.Family, spec.DType = family, safetensors.F32
	model, data := filepath.Join(dir, "model"), filepath.Join(dir, "data")
	if _, _, err := lmfolder.Write(model, spec); err != nil {
		return nil, err
	}
	if _, err := lmfolder.WriteData(data, 0); err != nil {
		return nil, err
	}
	return map[string]any{
		"model": model, "seq_len": 16, "eval_size": 32,
		"train":  filepath.Join(data, lmfolder.TrainFile),
		"eval":   filepath.Join(data, lmfolder.EvalFile),
		"retain": filepath.Join(data, lmfolder.RetainFile),
	}, nil
}

func TestMain(m *testing.M) {
	dir := os.Getenv("PEFTBENCH_TEST_CACHE")
	if dir == "" {
		d, err := os.MkdirTemp("", "peftbench-tasks-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	c, err := NewCache(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c.Log = os.Stderr
	testCache = c
	lmDir, err := os.MkdirTemp("", "peftbench-tasks-lm")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if testOptions["lm"], err = writeTinyLM(lmDir, "neox", lmfolder.Spec{Layers: 1, Dim: 32, Heads: 2, Vocab: 300}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(lmDir)
	if os.Getenv("PEFTBENCH_TEST_CACHE") == "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}
