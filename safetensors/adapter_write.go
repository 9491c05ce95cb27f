package safetensors

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"peftbench/internal/atomicfile"
)

// AdapterLayer is one adapted layer's LoRA factors, as WriteAdapter saves
// them: A is r×In and B is Out×r, row-major, whatever the base weight's
// layout (HF PEFT keeps lora_A [r, in] and lora_B [out, r] for GPT-2's
// Conv1D too and transposes B·A when merging: fan_in_fan_out).
type AdapterLayer struct {
	Name       string // the module's name in the base model
	R, In, Out int
	A, B       []float32
}

// WriteAdapter writes a Hugging Face PEFT LoRA adapter folder that peft's
// PeftModel.from_pretrained loads and OpenAdapter reads back:
//
//   - adapter_config.json: LoraConfig.to_dict() as save_pretrained writes it
//     (json indent 2, keys sorted): peft_type "LORA", task_type (cfg.TaskType;
//     "CAUSAL_LM" for a language model), r, lora_alpha, use_rslora,
//     fan_in_fan_out, target_modules (cfg.TargetModules, sorted, or
//     cfg.TargetRegex), rank_pattern and alpha_pattern, bias "none",
//     lora_dropout 0, init_lora_weights true, inference_mode true, and the
//     fields every LoRA method here leaves at PEFT's defaults (use_dora
//     false; modules_to_save, layers_to_transform … null). Fields PEFT added
//     in 0.14 and later (exclude_modules, lora_bias, eva_config,
//     corda_config, trainable_token_indices) are left out at their
//     defaults: PEFT before 0.14 refuses a config with keys it does not
//     know, later versions fill absent keys with their defaults;
//   - adapter_model.safetensors: "base_model.model.<layer>.lora_A.weight"
//     (r×in) and ".lora_B.weight" (out×r) in float32, metadata
//     {"format": "pt"}, as get_peft_model_state_dict names them (adapter
//     name removed).
//
// Each layer's rank must be the config's (r, or its rank_pattern entry) and
// each layer one the config targets, so that the folder says what it holds.
func WriteAdapter(dir string, cfg AdapterConfig, layers []AdapterLayer) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("safetensors: adapter %s: "+format, append([]any{dir}, args...)...)
	}
	if cfg.PEFTType == "" {
		cfg.PEFTType = "LORA"
	}
	switch {
	case cfg.PEFTType != "LORA":
		return fail("peft_type %q: only LORA is written", cfg.PEFTType)
	case cfg.R <= 0:
		return fail("r %d, want > 0", cfg.R)
	case math.IsNaN(cfg.LoRAAlpha) || math.IsInf(cfg.LoRAAlpha, 0):
		return fail("lora_alpha %v, want a number", cfg.LoRAAlpha)
	case len(layers) == 0:
		return fail("no layers")
	}
	var ts []Tensor
	seen := map[string]bool{}
	for _, l := range layers {
		switch {
		case l.Name == "" || seen[l.Name]:
			return fail("layer %q: empty or repeated name", l.Name)
		case l.R <= 0 || l.In <= 0 || l.Out <= 0 || len(l.A) != l.R*l.In || len(l.B) != l.Out*l.R:
			return fail("layer %q: A has %d values and B %d, want r×in = %d×%d and out×r = %d×%d",
				l.Name, len(l.A), len(l.B), l.R, l.In, l.Out, l.R)
		case l.R != int(patternValue(cfg.RankPattern, l.Name, float64(cfg.R))):
			return fail("layer %q: rank %d, but the config says %d", l.Name, l.R, int(patternValue(cfg.RankPattern, l.Name, float64(cfg.R))))
		case !cfg.Targets(l.Name):
			return fail("layer %q: not among the config's target_modules", l.Name)
		}
		seen[l.Name] = true
		p := "base_model.model." + l.Name
		ts = append(ts,
			Tensor{Name: p + ".lora_A.weight", Shape: []int{l.R, l.In}, Data: l.A},
			Tensor{Name: p + ".lora_B.weight", Shape: []int{l.Out, l.R}, Data: l.B})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if err := WriteFile(filepath.Join(dir, AdapterWeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	data, err := adapterConfigJSON(cfg)
	if err != nil {
		return fail("%v", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, AdapterConfigFile), data); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// adapterConfigJSON renders cfg as PEFT's save_pretrained does (indent 2,
// sorted keys; Go's encoder sorts map keys).
func adapterConfigJSON(cfg AdapterConfig) ([]byte, error) {
	patterns := func(ps []Pattern, integer bool) map[string]any {
		m := map[string]any{}
		for _, p := range ps {
			if integer {
				m[p.Key] = int(p.Value)
			} else {
				m[p.Key] = num(p.Value)
			}
		}
		return m
	}
	var target any
	switch {
	case cfg.TargetRegex != "":
		target = cfg.TargetRegex
	case cfg.TargetModules != nil:
		target = slices.Sorted(slices.Values(cfg.TargetModules))
	}
	var base any
	if cfg.BaseModel != "" {
		base = cfg.BaseModel
	}
	var task any
	if cfg.TaskType != "" {
		task = cfg.TaskType
	}
	m := map[string]any{
		"peft_type":               cfg.PEFTType,
		"task_type":               task,
		"base_model_name_or_path": base,
		"revision":                nil,
		"auto_mapping":            nil,
		"inference_mode":          true,
		"r":                       cfg.R,
		"lora_alpha":              num(cfg.LoRAAlpha),
		"lora_dropout":            0.0,
		"use_rslora":              cfg.UseRSLoRA,
		"fan_in_fan_out":          cfg.FanInFanOut,
		"target_modules":          target,
		"bias":                    "none",
		"use_dora":                false,
		"init_lora_weights":       true,
		"modules_to_save":         nil,
		"layers_to_transform":     nil,
		"layers_pattern":          nil,
		"layer_replication":       nil,
		"rank_pattern":            patterns(cfg.RankPattern, true),
		"alpha_pattern":           patterns(cfg.AlphaPattern, false),
		"megatron_config":         nil,
		"megatron_core":           "megatron.core",
		"loftq_config":            map[string]any{},
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// num is v as JSON writes Python's value: an integer when v is whole
// (lora_alpha is an int in LoraConfig), else the float.
func num(v float64) any {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return int64(v)
	}
	return v
}

// Short names a list of module names by their last component, as HF PEFT's
// target_modules lists them ("q_proj", "c_attn"), sorted and deduplicated.
func ShortNames(layers []string) []string {
	var s []string
	for _, l := range layers {
		s = append(s, l[strings.LastIndex(l, ".")+1:])
	}
	slices.Sort(s)
	return slices.Compact(s)
}
