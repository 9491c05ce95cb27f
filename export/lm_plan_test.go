package export

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// planProbe prints trainers/pytorch/train_lm.py's plan (the HF PEFT config
// class, its arguments and the init-tensor name map) for an export folder.
// plan needs neither torch nor transformers nor peft.
const planProbe = `import json, sys
sys.path.insert(0, sys.argv[1])
import train_lm
man = json.load(open(sys.argv[2]))
try:
    print(json.dumps(train_lm.plan(man)))
except train_lm.Fail as e:
    print(json.dumps({"error": str(e)}))
`

type lmPlan struct {
	Config  *string           `json:"config"`
	Kwargs  map[string]any    `json:"kwargs"`
	Trainer map[string]any    `json:"trainer"`
	Init    map[string]string `json:"init"`
	Error   string            `json:"error"`
}

// TestLMPEFTPlan checks, without transformers or peft, what train_lm.py
// builds for an lm export: the config class and options PEFT_METHODS maps
// the method to, target_modules = the export's targeted module names (the
// checkpoint's own), fan_in_fan_out on GPT-2's Conv1D layers, and the map
// of the builtin's initial tensors onto PEFT's parameter names (every
// tensor of lora, dora and ia3; none where PEFT initialises).
// Planted bugs caught: target_modules left out or set to "all-linear"
// (the head would differ on untied checkpoints), a wrong INIT_SUFFIX
// (lora_A.weight not lora_A.default.weight: PEFT would keep its own init
// and the GPU numbers drift off the builtin's), fan_in_fan_out missing on
// gpt2, an option mapped to the wrong field (r, lora_alpha, use_dora).
func TestLMPEFTPlan(t *testing.T) {
	py := "/usr/bin/python3"
	if p := os.Getenv("PEFTBENCH_PYTHON"); p != "" {
		py = p
	}
	if _, err := exec.LookPath(py); err != nil {
		t.Skipf("no Python (%s) to check trainers/pytorch/train_lm.py's plan with; set PEFTBENCH_PYTHON", py)
	}
	scripts, err := filepath.Abs(filepath.Join("..", "trainers", "pytorch"))
	if err != nil {
		t.Fatal(err)
	}
	models := map[string]map[string]any{} // one checkpoint per family, for all subtests
	for _, f := range []string{"neox", "gpt2", "llama", "qwen2"} {
		models[f] = tinyLM(t, f)
	}
	for _, tc := range []struct {
		family, method string
		config         string // "" for full fine-tuning
		kwargs         map[string]any
		fanInFanOut    bool
		init           bool
	}{
		{"neox", "lora", "LoraConfig", map[string]any{"r": 2.0, "init_lora_weights": true}, false, true},
		{"gpt2", "lora", "LoraConfig", map[string]any{"r": 2.0}, true, true},
		{"llama", "dora", "LoraConfig", map[string]any{"r": 2.0, "use_dora": true}, false, true},
		{"qwen2", "ia3", "IA3Config", map[string]any{"init_ia3_weights": true}, false, true},
		{"gpt2", "ia3", "IA3Config", map[string]any{}, true, true},
		{"neox", "loha", "LoHaConfig", map[string]any{"r": 2.0}, false, false},
		{"llama", "adalora", "AdaLoraConfig", map[string]any{"target_r": 2.0, "total_step": 4.0}, false, false},
		{"neox", "full", "", map[string]any{}, false, false},
	} {
		t.Run(tc.family+"/"+tc.method, func(t *testing.T) {
			topts := models[tc.family]
			cfg := lmConfig(t, tc.method, topts)
			dir := t.TempDir()
			m, err := Write(context.Background(), cfg, nil, dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(py, "-c", planProbe, scripts, filepath.Join(dir, ManifestFile)).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			var p lmPlan
			if err := json.Unmarshal(bytes.TrimSpace(out), &p); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if p.Error != "" {
				t.Fatal(p.Error)
			}
			if got := deref(p.Config); got != tc.config {
				t.Errorf("config %q, want %q", got, tc.config)
			}
			var targets []any
			for _, l := range m.Layers {
				if l.Targeted {
					targets = append(targets, l.Name)
				}
			}
			if tm, _ := p.Kwargs["target_modules"].([]any); !slices.Equal(tm, targets) || len(targets) == 0 {
				t.Errorf("target_modules = %v, want the targeted layers %v", p.Kwargs["target_modules"], targets)
			}
			for k, v := range tc.kwargs {
				if p.Kwargs[k] != v {
					t.Errorf("%s = %v, want %v", k, p.Kwargs[k], v)
				}
			}
			if f, _ := p.Kwargs["fan_in_fan_out"].(bool); f != tc.fanInFanOut {
				t.Errorf("fan_in_fan_out = %v, want %v", p.Kwargs["fan_in_fan_out"], tc.fanInFanOut)
			}
			if a, ok := p.Kwargs["lora_alpha"]; ok && a != m.MethodOptions["alpha"] {
				t.Errorf("lora_alpha = %v, want the resolved alpha %v", a, m.MethodOptions["alpha"])
			}
			if !tc.init {
				if len(p.Init) != 0 {
					t.Errorf("init map %v, want none (PEFT initialises %s)", p.Init, tc.method)
				}
				return
			}
			if len(p.Init) != len(m.Params) || len(m.Params) == 0 {
				t.Fatalf("init map has %d of the %d exported tensors", len(p.Init), len(m.Params))
			}
			for _, q := range m.Params {
				hf := p.Init[q.Name]
				layer := q.Name[:strings.LastIndex(strings.TrimSuffix(q.Name, ".weight"), ".")]
				if !strings.HasPrefix(hf, "base_model.model."+layer+".") || !strings.Contains(hf, ".default") {
					t.Errorf("%s → %q, want base_model.model.%s.<tensor>.default…", q.Name, hf, layer)
				}
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
