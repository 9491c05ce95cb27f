package safetensors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestWriteAdapterRoundTrip writes a folder and reads it back with
// OpenAdapter: the factors, scale and config survive, the keys are PEFT's
// ("base_model.model.<layer>.lora_A.weight") and adapter_config.json has
// the fields HF PEFT's LoraConfig writes. Catches a writer that swaps A and
// B, drops the prefix, or writes lora_alpha as α/r.
func TestWriteAdapterRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "adapter")
	cfg := AdapterConfig{R: 2, LoRAAlpha: 4, FanInFanOut: true, BaseModel: "/m/gpt2", TaskType: "CAUSAL_LM",
		TargetModules: []string{"c_attn", "c_fc"}}
	layers := []AdapterLayer{
		{Name: "transformer.h.0.attn.c_attn", R: 2, In: 3, Out: 2, A: loraA, B: loraB},
		{Name: "transformer.h.0.mlp.c_fc", R: 2, In: 3, Out: 2, A: loraB[:0:0], B: nil},
	}
	if err := WriteAdapter(dir, cfg, layers); err == nil || !strings.Contains(err.Error(), "A has 0 values") {
		t.Fatalf("bad factor sizes: err = %v", err)
	}
	layers[1].A, layers[1].B = []float32{1, 1, 1, 2, 2, 2}, []float32{0, 1, 1, 0}
	if err := WriteAdapter(dir, cfg, layers); err != nil {
		t.Fatal(err)
	}
	a, err := OpenAdapter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	want := []string{"transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_fc"}
	if !slices.Equal(a.Layers(), want) {
		t.Errorf("layers %v, want %v", a.Layers(), want)
	}
	names := a.File().Names()
	slices.Sort(names)
	wantKeys := []string{
		"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
		"base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight", "base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight",
	}
	if !slices.Equal(names, wantKeys) {
		t.Errorf("keys %v, want %v", names, wantKeys)
	}
	A, B, out, r, in, err := a.Factors(want[0])
	if err != nil || !slices.Equal(A, loraA) || !slices.Equal(B, loraB) || out != 2 || r != 2 || in != 3 {
		t.Errorf("factors %v %v %d×%d×%d (%v), want %v %v", A, B, out, r, in, err, loraA, loraB)
	}
	if s, _ := a.Scale(want[0]); s != 2 {
		t.Errorf("scale %v, want α/r = 2", s)
	}
	got := a.Config
	got.TargetModules = slices.Sorted(slices.Values(got.TargetModules))
	cfg.PEFTType = "LORA"
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("config read back %+v, want %+v", got, cfg)
	}
	data, err := os.ReadFile(filepath.Join(dir, AdapterConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2.0, "lora_alpha": 4.0,
		"bias": "none", "use_rslora": false, "use_dora": false, "fan_in_fan_out": true, "inference_mode": true,
		"base_model_name_or_path": "/m/gpt2", "init_lora_weights": true, "lora_dropout": 0.0} {
		if !reflect.DeepEqual(raw[k], v) {
			t.Errorf("adapter_config.json %s = %#v, want %#v", k, raw[k], v)
		}
	}
	if !strings.Contains(string(data), `"lora_alpha": 4,`) {
		t.Errorf("lora_alpha not written as an int:\n%s", data)
	}

	// A layer the config does not target, or of another rank, is refused.
	cfg.TargetModules = []string{"c_attn"}
	if err := WriteAdapter(t.TempDir(), cfg, layers); err == nil || !strings.Contains(err.Error(), "not among") {
		t.Errorf("untargeted layer: err = %v", err)
	}
	cfg.TargetModules, cfg.R = nil, 4
	if err := WriteAdapter(t.TempDir(), cfg, layers); err == nil || !strings.Contains(err.Error(), "rank 2") {
		t.Errorf("wrong rank: err = %v", err)
	}
}

func TestShortNames(t *testing.T) {
	got := ShortNames([]string{"transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_proj", "lm_head"})
	if want := []string{"c_attn", "c_proj", "lm_head"}; !slices.Equal(got, want) {
		t.Errorf("ShortNames = %v, want %v", got, want)
	}
}
