package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// File names of a PEFT adapter folder.
const (
	AdapterConfigFile  = "adapter_config.json"
	AdapterWeightsFile = "adapter_model.safetensors"
)

// AdapterConfig is the part of a PEFT adapter_config.json that determines
// the weights' meaning. Other fields are ignored.
type AdapterConfig struct {
	PEFTType    string  // only "LORA" is supported
	R           int     // default rank
	LoRAAlpha   float64 // default alpha
	UseRSLoRA   bool    // scale α/√r instead of α/r
	FanInFanOut bool    // base weights stored (in×out), as GPT-2's Conv1D
	BaseModel   string  // base_model_name_or_path
	TaskType    string  // task_type ("CAUSAL_LM"); "" for none (null)
	// TargetModules lists module-name suffixes; TargetRegex is set instead
	// when the config gives one string (a regex matched against the whole
	// module name, or "all-linear"). Both empty: no restriction recorded.
	TargetModules []string
	TargetRegex   string
	// RankPattern and AlphaPattern override R and LoRAAlpha per module, in
	// file order; a key matches a layer as in PEFT's get_pattern_key.
	RankPattern  []Pattern
	AlphaPattern []Pattern
}

// Pattern is one rank_pattern or alpha_pattern entry.
type Pattern struct {
	Key   string
	Value float64
}

// Adapter is an opened PEFT LoRA adapter folder.
//
// Layer names are the adapted modules' names in the base model, taken from
// the weight keys "base_model.model.<layer>.lora_A[.<adapter>].weight" (r×in)
// and ".lora_B[.<adapter>].weight" (out×r), the "base_model.model." prefix
// stripped when present. Match maps layers to base-checkpoint tensor names.
type Adapter struct {
	Config AdapterConfig
	dir    string
	file   *File
	layers map[string]*loraLayer
	names  []string
	others []string
}

type loraLayer struct {
	a, b         string // tensor names
	out, r, in   int
	alpha, scale float64
}

// loraKey matches a LoRA factor key: layer, factor, optional adapter name.
var loraKey = regexp.MustCompile(`^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.([^.]+))?\.weight$`)

// OpenAdapter opens the PEFT adapter in dir: adapter_config.json and
// adapter_model.safetensors. It checks that every layer has both factors
// with consistent shapes, that each rank agrees with r or rank_pattern, and
// that each layer is one the config targets.
func OpenAdapter(dir string) (a *Adapter, err error) {
	cfgPath := filepath.Join(dir, AdapterConfigFile)
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("safetensors: adapter: %w", err)
	}
	cfg, err := parseAdapterConfig(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", cfgPath, err)
	}
	wPath := filepath.Join(dir, AdapterWeightsFile)
	if _, err := os.Stat(wPath); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, "adapter_model.bin")); err == nil {
			return nil, fmt.Errorf("safetensors: %s: only adapter_model.bin (pickle) found; convert it to %s", dir, AdapterWeightsFile)
		}
	}
	f, err := Open(wPath)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	a = &Adapter{Config: cfg, dir: dir, file: f, layers: map[string]*loraLayer{}}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("safetensors: %s: "+format, append([]any{wPath}, args...)...)
	}
	for _, name := range f.Names() {
		m := loraKey.FindStringSubmatch(name)
		if m == nil {
			if strings.Contains(name, ".lora_") {
				return nil, fail("tensor %q: unsupported LoRA tensor (only lora_A and lora_B weights)", name)
			}
			a.others = append(a.others, name)
			continue
		}
		layer, factor := m[1], m[2]
		l := a.layers[layer]
		if l == nil {
			l = &loraLayer{}
			a.layers[layer] = l
		}
		slot := &l.a
		if factor == "B" {
			slot = &l.b
		}
		if *slot != "" {
			return nil, fail("layer %q: two lora_%s tensors, %q and %q", layer, factor, *slot, name)
		}
		*slot = name
	}
	for _, layer := range slices.Sorted(maps.Keys(a.layers)) {
		l := a.layers[layer]
		if l.a == "" || l.b == "" {
			return nil, fail("layer %q: has lora_A %q and lora_B %q; want both", layer, l.a, l.b)
		}
		ia, _ := f.Info(l.a)
		ib, _ := f.Info(l.b)
		if !ia.DType.Float() || !ib.DType.Float() {
			return nil, fail("layer %q: dtypes %s and %s; want floating point", layer, ia.DType, ib.DType)
		}
		if len(ia.Shape) != 2 || len(ib.Shape) != 2 || ia.Shape[0] != ib.Shape[1] || ia.Shape[0] == 0 {
			return nil, fail("layer %q: lora_A shape %v and lora_B shape %v; want (r×in) and (out×r), r > 0", layer, ia.Shape, ib.Shape)
		}
		l.out, l.r, l.in = ib.Shape[0], ia.Shape[0], ia.Shape[1]
		if want := int(patternValue(cfg.RankPattern, layer, float64(cfg.R))); l.r != want {
			return nil, fail("layer %q: rank %d, but the config says %d", layer, l.r, want)
		}
		if !cfg.Targets(layer) {
			return nil, fail("layer %q: not among the config's target_modules", layer)
		}
		l.alpha = patternValue(cfg.AlphaPattern, layer, cfg.LoRAAlpha)
		if cfg.UseRSLoRA {
			l.scale = l.alpha / math.Sqrt(float64(l.r))
		} else {
			l.scale = l.alpha / float64(l.r)
		}
		a.names = append(a.names, layer)
	}
	if len(a.names) == 0 {
		return nil, fail("no lora_A/lora_B tensors")
	}
	return a, nil
}

// parseAdapterConfig decodes and checks adapter_config.json.
func parseAdapterConfig(data []byte) (AdapterConfig, error) {
	var raw struct {
		PEFTType      *string         `json:"peft_type"`
		R             *int            `json:"r"`
		LoRAAlpha     *float64        `json:"lora_alpha"`
		UseRSLoRA     bool            `json:"use_rslora"`
		FanInFanOut   bool            `json:"fan_in_fan_out"`
		BaseModel     *string         `json:"base_model_name_or_path"`
		TaskType      *string         `json:"task_type"`
		TargetModules json.RawMessage `json:"target_modules"`
		RankPattern   json.RawMessage `json:"rank_pattern"`
		AlphaPattern  json.RawMessage `json:"alpha_pattern"`
		UseDoRA       bool            `json:"use_dora"`
		LoRABias      bool            `json:"lora_bias"`
	}
	var cfg AdapterConfig
	if err := json.Unmarshal(data, &raw); err != nil {
		return cfg, err
	}
	switch {
	case raw.PEFTType == nil:
		return cfg, errors.New("peft_type: missing field")
	case *raw.PEFTType != "LORA":
		return cfg, fmt.Errorf("peft_type: %q is not supported (only LORA)", *raw.PEFTType)
	case raw.UseDoRA:
		return cfg, errors.New("use_dora: DoRA adapters are not supported")
	case raw.LoRABias:
		return cfg, errors.New("lora_bias: LoRA B biases are not supported")
	case raw.R == nil || *raw.R <= 0:
		return cfg, errors.New("r: want a positive integer")
	case raw.LoRAAlpha == nil || math.IsNaN(*raw.LoRAAlpha) || math.IsInf(*raw.LoRAAlpha, 0):
		return cfg, errors.New("lora_alpha: want a number")
	}
	cfg.PEFTType, cfg.R, cfg.LoRAAlpha = *raw.PEFTType, *raw.R, *raw.LoRAAlpha
	cfg.UseRSLoRA, cfg.FanInFanOut = raw.UseRSLoRA, raw.FanInFanOut
	if raw.BaseModel != nil {
		cfg.BaseModel = *raw.BaseModel
	}
	if raw.TaskType != nil {
		cfg.TaskType = *raw.TaskType
	}
	if t := bytes.TrimSpace(raw.TargetModules); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		if t[0] == '"' {
			if err := json.Unmarshal(t, &cfg.TargetRegex); err != nil {
				return cfg, fmt.Errorf("target_modules: %w", err)
			}
			if _, err := regexp.Compile(`^(?:` + cfg.TargetRegex + `)$`); err != nil && cfg.TargetRegex != "all-linear" {
				return cfg, fmt.Errorf("target_modules: %w", err)
			}
		} else if err := json.Unmarshal(t, &cfg.TargetModules); err != nil {
			return cfg, fmt.Errorf("target_modules: want a string or a list of strings: %w", err)
		}
	}
	var err error
	if cfg.RankPattern, err = parsePatterns(raw.RankPattern); err != nil {
		return cfg, fmt.Errorf("rank_pattern: %w", err)
	}
	for _, p := range cfg.RankPattern {
		if p.Value <= 0 || p.Value != math.Trunc(p.Value) {
			return cfg, fmt.Errorf("rank_pattern: %q: want a positive integer, got %v", p.Key, p.Value)
		}
	}
	if cfg.AlphaPattern, err = parsePatterns(raw.AlphaPattern); err != nil {
		return cfg, fmt.Errorf("alpha_pattern: %w", err)
	}
	return cfg, nil
}

// parsePatterns reads a {"pattern": number} object, keeping file order.
func parsePatterns(raw json.RawMessage) ([]Pattern, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var ps []Pattern
	err := walkObject(dec, "object", func(key string) error {
		if _, err := regexp.Compile(`^(?:.*\.)?(?:` + key + `)$`); err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
		tok, err := token(dec)
		if err != nil {
			return err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return fmt.Errorf("%q: want a number, got %s", key, describe(tok))
		}
		v, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
		ps = append(ps, Pattern{key, v})
		return nil
	})
	return ps, err
}

// patternValue returns the value of the first pattern matching layer (an
// exact key first, then keys matched as PEFT's get_pattern_key does, the
// regex "(.*\.)?(key)$" against the whole name), or def.
func patternValue(ps []Pattern, layer string, def float64) float64 {
	for _, p := range ps {
		if p.Key == layer {
			return p.Value
		}
	}
	for _, p := range ps {
		if regexp.MustCompile(`^(?:.*\.)?(?:` + p.Key + `)$`).MatchString(layer) {
			return p.Value
		}
	}
	return def
}

// Targets reports whether the config's target_modules cover layer, as PEFT
// matches them: a list entry equals the name or is a dotted suffix of it; a
// string is a regex that must match the whole name.
func (c *AdapterConfig) Targets(layer string) bool {
	switch {
	case c.TargetRegex == "all-linear":
		return true
	case c.TargetRegex != "":
		return regexp.MustCompile(`^(?:` + c.TargetRegex + `)$`).MatchString(layer)
	case c.TargetModules == nil:
		return true
	}
	for _, t := range c.TargetModules {
		if layer == t || strings.HasSuffix(layer, "."+t) {
			return true
		}
	}
	return false
}

// Close closes the adapter's weights file.
func (a *Adapter) Close() error { return a.file.Close() }

// Layers lists the adapted layers' names, sorted.
func (a *Adapter) Layers() []string { return slices.Clone(a.names) }

// Others lists the adapter file's tensors that are not LoRA factors (such as
// modules_to_save copies or biases), sorted; read them with File.
func (a *Adapter) Others() []string { return slices.Clone(a.others) }

// File returns the adapter's weights file.
func (a *Adapter) File() *File { return a.file }

func (a *Adapter) layer(name string) (*loraLayer, error) {
	l, ok := a.layers[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: adapter %s: no layer %q", a.dir, name)
	}
	return l, nil
}

// Scale reports the layer's LoRA scale: α/r, or α/√r with rsLoRA.
func (a *Adapter) Scale(layer string) (float64, error) {
	l, err := a.layer(layer)
	if err != nil {
		return 0, err
	}
	return l.scale, nil
}

// Factors reads the layer's A (r×in) and B (out×r), row-major.
func (a *Adapter) Factors(layer string) (A, B []float32, out, r, in int, err error) {
	l, err := a.layer(layer)
	if err != nil {
		return nil, nil, 0, 0, 0, err
	}
	if A, _, err = a.file.Tensor(l.a); err != nil {
		return nil, nil, 0, 0, 0, err
	}
	if B, _, err = a.file.Tensor(l.b); err != nil {
		return nil, nil, 0, 0, 0, err
	}
	return A, B, l.out, l.r, l.in, nil
}

// Delta returns the layer's weight update ΔW = scale·B·A as a row-major
// out×in matrix, accumulated in float64.
func (a *Adapter) Delta(layer string) (out, in int, delta []float32, err error) {
	A, B, out, r, in, err := a.Factors(layer)
	if err != nil {
		return 0, 0, nil, err
	}
	if in != 0 && out > math.MaxInt/in {
		return 0, 0, nil, fmt.Errorf("safetensors: adapter %s: layer %q: %d×%d overflows", a.dir, layer, out, in)
	}
	s := a.layers[layer].scale
	delta = make([]float32, out*in)
	row := make([]float64, in)
	for i := range out {
		clear(row)
		for k := range r {
			bik := float64(B[i*r+k])
			for j, akj := range A[k*in : (k+1)*in] {
				row[j] += bik * float64(akj)
			}
		}
		for j, v := range row {
			delta[i*in+j] = float32(s * v)
		}
	}
	return out, in, delta, nil
}

// MergeInto adds the layer's ΔW to the base weight w, a row-major rows×cols
// matrix: out×in, or in×out when the config sets fan_in_fan_out (ΔWᵀ is
// added then, as PEFT merges Conv1D layers).
func (a *Adapter) MergeInto(layer string, w []float32, rows, cols int) error {
	l, err := a.layer(layer)
	if err != nil {
		return err
	}
	out, in := l.out, l.in
	wantR, wantC := out, in
	if a.Config.FanInFanOut {
		wantR, wantC = in, out
	}
	if rows != wantR || cols != wantC || len(w) != rows*cols {
		return fmt.Errorf("safetensors: adapter %s: layer %q: base weight %d×%d (%d values), want %d×%d",
			a.dir, layer, rows, cols, len(w), wantR, wantC)
	}
	_, _, d, err := a.Delta(layer)
	if err != nil {
		return err
	}
	for i := range out {
		for j := range in {
			if a.Config.FanInFanOut {
				w[j*out+i] += d[i*in+j]
			} else {
				w[i*in+j] += d[i*in+j]
			}
		}
	}
	return nil
}

// Match maps each adapted layer to its weight's name in a base checkpoint
// holding the tensors base. For layer L the candidates are "L.weight" and,
// to bridge checkpoints saved with and without the task-head wrapper, the
// same with a leading "model." removed (when L has it) or added (when it
// does not). Exactly one candidate must be present.
func (a *Adapter) Match(base []string) (map[string]string, error) {
	have := make(map[string]bool, len(base))
	for _, b := range base {
		have[b] = true
	}
	m := make(map[string]string, len(a.names))
	for _, l := range a.names {
		cands := []string{l + ".weight"}
		if rest, ok := strings.CutPrefix(l, "model."); ok {
			cands = append(cands, rest+".weight")
		} else {
			cands = append(cands, "model."+l+".weight")
		}
		var found []string
		for _, c := range cands {
			if have[c] {
				found = append(found, c)
			}
		}
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("safetensors: adapter %s: layer %q: no base weight (tried %q)", a.dir, l, cands)
		case 2:
			return nil, fmt.Errorf("safetensors: adapter %s: layer %q: ambiguous base weight, both %q", a.dir, l, found)
		}
		m[l] = found[0]
	}
	return m, nil
}
