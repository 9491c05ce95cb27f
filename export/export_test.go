package export

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"peftbench/methods"
	"peftbench/nn"
	"peftbench/safetensors"
	"peftbench/tasks"
	"peftbench/train"
)

func config(method string, rank int, task string, topts map[string]any) train.Config {
	mo := map[string]any{}
	if rank > 0 {
		mo["rank"] = rank
	}
	o, err := methods.ResolveOptions(method, rank, mo)
	if err != nil {
		panic(err)
	}
	return train.Config{
		Method: method, MethodOptions: o, Task: task, TaskOptions: topts, Seed: 5,
		Layers: []string{"fc1", "fc2"}, Steps: 3, Batch: 4, LR: 1e-2, Optimizer: "adamw",
		Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Schedule: "cosine", Warmup: 1,
	}
}

func small() map[string]any { return map[string]any{"pretrain_steps": 20, "eval_size": 64} }

func newCache(t *testing.T) *tasks.Cache {
	c, err := tasks.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWriteLoRA checks an export against what the builtin trainer draws:
// the data stream's batches, the init stream's factors, the schedule.
func TestWriteLoRA(t *testing.T) {
	cfg := config("lora", 2, "teacher-shift", small())
	dir := t.TempDir()
	m, err := Write(context.Background(), cfg, newCache(t), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Arch.Kind != "mlp" || m.Arch.Act != "relu" || !slices.Equal(m.Arch.Sizes, []int{16, 64, 64, 5}) {
		t.Errorf("arch = %+v", m.Arch)
	}
	if len(m.Params) != 4 || m.TrainableParams != 2*(16+64)+2*(64+64) || m.Params[0].Name != "fc1.lora_A.weight" {
		t.Errorf("params = %+v (%d)", m.Params, m.TrainableParams)
	}
	if len(m.Train.LR) != 3 || m.Train.LR[0] != 0 || m.Train.LR[1] != float64(float32(1e-2)) {
		t.Errorf("lr = %v, want warmup 0 then the peak", m.Train.LR)
	}
	var onDisk Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil || json.Unmarshal(b, &onDisk) != nil || onDisk.Layers[2].Adapter != nil || onDisk.Layers[0].Adapter.Scale != 4 {
		t.Fatalf("export.json: %v %+v", err, onDisk.Layers)
	}

	inst, err := tasks.New(cfg.Task, cfg.TaskOptions)
	if err != nil {
		t.Fatal(err)
	}
	data, err := safetensors.Open(filepath.Join(dir, DataFile))
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	x, shape, err := data.Tensor("train.x")
	if err != nil {
		t.Fatal(err)
	}
	rng := nn.NewRNG(5, "data")
	var want []float32
	for range 3 {
		want = append(want, inst.TrainBatch(rng, 4).X.Data...)
	}
	if !slices.Equal(shape, []int{3, 4, 16}) || !slices.Equal(x, want) {
		t.Errorf("train.x %v differs from the data stream's batches", shape)
	}
	if _, shape, _ := data.Tensor("retain.labels"); !slices.Equal(shape, []int{64}) {
		t.Errorf("retain.labels shape %v", shape)
	}
	var wantVal []float32
	for _, b := range inst.Validation() {
		wantVal = append(wantVal, b.X.Data...)
	}
	if vx, shape, _ := data.Tensor("val.x"); !slices.Equal(shape, []int{m.ValRows, 16}) || m.ValRows != 16 || !slices.Equal(vx, wantVal) {
		t.Errorf("val.x %v (val_rows %d) is not the task's validation set (16 rows)", shape, m.ValRows)
	}

	init, err := safetensors.Open(filepath.Join(dir, InitFile))
	if err != nil {
		t.Fatal(err)
	}
	defer init.Close()
	l := nn.NewLinear("fc1", 16, 64, true, nn.NewRNG(0, "x"))
	l2 := nn.NewLinear("fc2", 64, 64, true, nn.NewRNG(0, "x"))
	if _, err := methods.Attach("lora", []*nn.Linear{l, l2}, cfg.MethodOptions, nn.NewRNG(5, "init")); err != nil {
		t.Fatal(err)
	}
	a, _, err := init.Tensor("fc1.lora_A.weight")
	if err != nil || !slices.Equal(a, l.Adapter.(*methods.LoRA).A.Data) {
		t.Errorf("fc1.lora_A.weight is not the init stream's draw (%v)", err)
	}
}

func TestWriteRefuses(t *testing.T) {
	cache := newCache(t)
	stages := small()
	stages["stages"] = 2
	cases := []struct {
		name string
		cfg  train.Config
		opt  Options
		want string // "" = succeeds
	}{
		{"full", config("full", 0, "teacher-shift", small()), Options{}, ""},
		{"dora", config("dora", 2, "teacher-shift", small()), Options{}, ""},
		{"vera", config("vera", 4, "teacher-shift", small()), Options{}, "no external form"},
		{"vera data only", config("vera", 4, "teacher-shift", small()), Options{DataOnly: true}, ""},
		{"adalora", config("adalora", 4, "teacher-shift", small()), Options{}, "inside the optimiser loop"},
		// A plain LoRA layer whose optimiser (OptimizerMaker) or per-step
		// freezing (StepStarter) an external trainer would silently drop.
		{"lora-pro", config("lora-pro", 4, "teacher-shift", small()), Options{}, "inside the optimiser loop"},
		{"lisa", config("lisa", 0, "teacher-shift", small()), Options{}, "inside the optimiser loop"},
		{"continual", config("lora", 2, "teacher-shift", stages), Options{}, "continual"},
		{"transformer", config("lora", 2, "modarith", nil), Options{}, "only MLP"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.cfg.Task == "modarith" {
				c.cfg.Layers = nil
			}
			dir := t.TempDir()
			m, err := Write(context.Background(), c.cfg, cache, dir, c.opt)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want one containing %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, statErr := os.Stat(filepath.Join(dir, InitFile))
			if c.opt.DataOnly != os.IsNotExist(statErr) || m.DataOnly != c.opt.DataOnly {
				t.Errorf("data only %v: init file: %v", c.opt.DataOnly, statErr)
			}
		})
	}
}
