package lm

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"

	"peftbench/safetensors"
)

// AdapterLayer is one adapted linear layer of a Model to save as HF PEFT
// LoRA: ΔW = Scale·B·A on the layer's [out, in] weight, A r×In and B Out×r
// row-major (methods.LoRA.PEFTFactors gives them, with Scale its Scale).
type AdapterLayer struct {
	Name  string // a linear layer of the model ("model.layers.0.self_attn.q_proj")
	R     int
	A, B  []float32
	Scale float64
}

// SaveAdapter writes layers as a Hugging Face PEFT LoRA folder for this
// checkpoint (safetensors.WriteAdapter): adapter_config.json with
// task_type CAUSAL_LM, base_model_name_or_path the folder the model was
// loaded from (absolute), r the rank most layers have (others in
// rank_pattern by full module name), lora_alpha = Scale·r (others in
// alpha_pattern), use_rslora false (an rsLoRA scale α/√r is written as
// the equivalent α' = s·r), fan_in_fan_out true on GPT-2 (its Conv1D
// weights are [in, out]; lora_A [r, in] and lora_B [out, r] as for any
// layer, ΔW transposed when merged, as HF PEFT does), and target_modules
// the layers' short names ("c_attn", "q_proj") when those select exactly
// the adapted layers among the model's linears, else their full names; and
// adapter_model.safetensors with PEFT's keys
// "base_model.model.<module>.lora_A.weight".
func (m *Model) SaveAdapter(dir string, layers []AdapterLayer) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("lm: adapter %s: "+format, append([]any{dir}, args...)...)
	}
	if len(layers) == 0 {
		return fail("no adapted layers")
	}
	linears := map[string]bool{}
	var all []string
	for _, l := range m.Linears() {
		linears[l.Name] = true
		all = append(all, l.Name)
	}
	conv := map[string]bool{}
	for _, e := range m.entries {
		if e.conv1d {
			conv[e.name[:len(e.name)-len(".weight")]] = true
		}
	}
	shape := map[string][2]int{}
	for _, l := range m.Linears() {
		shape[l.Name] = [2]int{l.Out, l.In}
	}
	ranks, alphas := map[int]int{}, map[float64]int{}
	var names []string
	var st []safetensors.AdapterLayer
	nConv := 0
	for _, l := range layers {
		if !linears[l.Name] {
			return fail("layer %q is not a linear layer of the %s model (%s)", l.Name, m.Cfg.ModelType, m.Dir)
		}
		if !(l.Scale > 0) || math.IsInf(l.Scale, 0) {
			return fail("layer %q: scale %v, want > 0", l.Name, l.Scale)
		}
		sh := shape[l.Name]
		st = append(st, safetensors.AdapterLayer{Name: l.Name, R: l.R, Out: sh[0], In: sh[1], A: l.A, B: l.B})
		ranks[l.R]++
		alphas[alphaOf(l)]++
		names = append(names, l.Name)
		if conv[l.Name] {
			nConv++
		}
	}
	if nConv != 0 && nConv != len(layers) {
		return fail("%d of %d layers are GPT-2 Conv1D: one fan_in_fan_out cannot describe both layouts", nConv, len(layers))
	}
	cfg := safetensors.AdapterConfig{PEFTType: "LORA", TaskType: "CAUSAL_LM", FanInFanOut: nConv > 0,
		R: mostCommon(ranks), LoRAAlpha: mostCommon(alphas)}
	if abs, err := filepath.Abs(m.Dir); err == nil && m.Dir != "" {
		cfg.BaseModel = abs
	} else {
		cfg.BaseModel = m.Dir
	}
	for _, l := range layers {
		if l.R != cfg.R {
			cfg.RankPattern = append(cfg.RankPattern, safetensors.Pattern{Key: l.Name, Value: float64(l.R)})
		}
		if a := alphaOf(l); a != cfg.LoRAAlpha {
			cfg.AlphaPattern = append(cfg.AlphaPattern, safetensors.Pattern{Key: l.Name, Value: a})
		}
	}
	// Short names when they select exactly the adapted layers (HF PEFT
	// matches a list entry as the whole name or a dotted suffix).
	short := safetensors.ShortNames(names)
	cfg.TargetModules = short
	for _, n := range all {
		if cfg.Targets(n) != slices.Contains(names, n) {
			cfg.TargetModules = slices.Sorted(slices.Values(names))
			break
		}
	}
	if err := safetensors.WriteAdapter(dir, cfg, st); err != nil {
		return fmt.Errorf("lm: %w", err)
	}
	return nil
}

// alphaOf is the lora_alpha giving l's scale at its rank (α = s·r),
// rounded to the nearest integer when within float32 rounding of it.
func alphaOf(l AdapterLayer) float64 {
	a := l.Scale * float64(l.R)
	if r := math.Round(a); math.Abs(a-r) <= 1e-6*math.Max(1, r) {
		return r
	}
	return a
}

// mostCommon returns the key with the largest count, the smallest key on
// ties.
func mostCommon[K int | float64](counts map[K]int) K {
	keys := slices.Sorted(maps.Keys(counts))
	best := keys[0]
	for _, k := range keys {
		if counts[k] > counts[best] {
			best = k
		}
	}
	return best
}
