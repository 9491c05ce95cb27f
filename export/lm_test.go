package export

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"peftbench/lmfolder"
	"peftbench/methods"
	"peftbench/safetensors"
	"peftbench/tasks"
	"peftbench/train"
)

// tinyLM writes a tiny F32 checkpoint of family and its demo data into a
// temp dir and returns the lm task's options.
func tinyLM(t *testing.T, family string) map[string]any {
	t.Helper()
	dir := t.TempDir()
	spec := lmfolder.Spec{Family: family, DType: safetensors.F32}
	model, data := filepath.Join(dir, "model"), filepath.Join(dir, "data")
	if _, _, err := lmfolder.Write(model, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := lmfolder.WriteData(data, 0); err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"model": model, "seq_len": 16, "eval_size": 8,
		"train":  filepath.Join(data, lmfolder.TrainFile),
		"eval":   filepath.Join(data, lmfolder.QAEvalFile), // prompt + completion: -100 on the prompt
		"retain": filepath.Join(data, lmfolder.RetainFile),
	}
}

func lmConfig(t *testing.T, method string, topts map[string]any) train.Config {
	t.Helper()
	mo, rank := map[string]any{"rank": 2}, 2
	if method == "ia3" || method == "full" {
		mo, rank = map[string]any{}, 0
	}
	o, err := methods.ResolveOptions(method, rank, mo)
	if err != nil {
		t.Fatal(err)
	}
	shapes, err := train.Layers("lm", topts)
	if err != nil {
		t.Fatal(err)
	}
	var layers []string // all-linear, as the sweep resolves it
	for _, s := range shapes {
		if !s.Output {
			layers = append(layers, s.Name)
		}
	}
	return train.Config{
		Method: method, MethodOptions: o, Task: "lm", TaskOptions: topts, Seed: 7,
		Layers: layers, Steps: 4, Batch: 3, LR: 1e-3, Optimizer: "adamw",
		Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Schedule: "cosine", Warmup: 1, GradClip: 1,
	}
}

func tensor(t *testing.T, f *safetensors.File, name string) ([]float32, []int) {
	t.Helper()
	d, shape, err := f.Tensor(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d, shape
}

func ints(v []float32) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// TestWriteLM checks an lm export against what the builtin trainer uses,
// drawn independently here: the training rows of the seed's data stream
// in order (a fresh instance and a fresh StreamData stream), the target (a prompt + completion file),
// retain and validation rows with -100 labels, the targeted module names,
// the init stream's tensors. Planted bugs caught: exporting from another
// stream or seed, one batch too few or in another order, labels unshifted
// or with -100 turned into 0, a target/val mix-up, the folder path left
// relative or unexpanded, a method's tensors not exported.
func TestWriteLM(t *testing.T) {
	for _, tc := range []struct{ family, method string }{{"neox", "lora"}, {"gpt2", "dora"}, {"llama", "ia3"}} {
		t.Run(tc.family+"/"+tc.method, func(t *testing.T) {
			topts := tinyLM(t, tc.family)
			folder := topts["model"].(string)
			t.Setenv("PEFTBENCH_EXPORT_TEST_MODEL", folder)
			topts["model"] = "$PEFTBENCH_EXPORT_TEST_MODEL"
			cfg := lmConfig(t, tc.method, topts)
			dir := t.TempDir()
			m, err := Write(context.Background(), cfg, nil, dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := filepath.Abs(folder)
			if m.Arch.Kind != LMKind || m.Arch.Model != want || m.Arch.Seq != 16 || m.Arch.Vocab <= 0 {
				t.Errorf("arch = %+v, want %s at %s", m.Arch, LMKind, want)
			}
			inst, err := tasks.New("lm", topts)
			if err != nil {
				t.Fatal(err)
			}
			shapes, _ := train.Layers("lm", topts)
			var targeted []string
			for _, l := range m.Layers {
				if l.Targeted {
					targeted = append(targeted, l.Name)
				}
			}
			var all []string
			for _, s := range shapes {
				if !s.Output {
					all = append(all, s.Name)
				}
			}
			if !slices.Equal(targeted, all) {
				t.Errorf("targeted = %v, want all-linear = %v", targeted, all)
			}

			f, err := safetensors.Open(filepath.Join(dir, DataFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ids, shape := tensor(t, f, "train.ids")
			labels, _ := tensor(t, f, "train.labels")
			if !slices.Equal(shape, []int{cfg.Steps, cfg.Batch, 16}) {
				t.Fatalf("train.ids shape %v", shape)
			}
			rng := cfg.RNG(train.StreamData)
			n := cfg.Batch * 16
			for s := range cfg.Steps {
				b := inst.TrainBatch(rng, cfg.Batch)
				if !slices.Equal(ints(ids[s*n:(s+1)*n]), b.IDs) || !slices.Equal(ints(labels[s*n:(s+1)*n]), b.Labels) {
					t.Fatalf("step %d: exported rows differ from the builtin's batch", s)
				}
			}
			for _, set := range []struct {
				name string
				bs   []tasks.Batch
			}{{"target", inst.Target()}, {"retain", inst.Retain()}, {"val", inst.Validation()}} {
				var wi, wl []int
				for _, b := range set.bs {
					wi, wl = append(wi, b.IDs...), append(wl, b.Labels...)
				}
				gi, _ := tensor(t, f, set.name+".ids")
				gl, _ := tensor(t, f, set.name+".labels")
				if !slices.Equal(ints(gi), wi) || !slices.Equal(ints(gl), wl) {
					t.Errorf("%s rows differ from the instance's", set.name)
				}
				if set.name == "target" && !slices.Contains(wl, -100) {
					t.Errorf("target labels hold no -100: the eval file's prompts should be ignored")
				}
				if set.name == "target" && m.TargetRows != len(wi)/16 {
					t.Errorf("target_rows = %d, want %d", m.TargetRows, len(wi)/16)
				}
			}

			// The init tensors are the init stream's, as a second Prepare draws them.
			base, err := inst.Base(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			setup, err := train.Prepare(cfg, inst, base, true)
			if err != nil {
				t.Fatal(err)
			}
			init, err := safetensors.Open(filepath.Join(dir, InitFile))
			if err != nil {
				t.Fatal(err)
			}
			defer init.Close()
			ps := setup.Attachment.Params()
			if len(ps) == 0 || len(ps) != len(m.Params) {
				t.Fatalf("%d params exported, the method has %d", len(m.Params), len(ps))
			}
			for i, p := range ps {
				got, _ := tensor(t, init, p.Name)
				if m.Params[i].Name != p.Name || !slices.Equal(got, p.T.Data) {
					t.Errorf("param %d %s differs from the init stream's", i, p.Name)
				}
			}
		})
	}
}
