package lm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"peftbench/nn"
)

// ConfigFile is the name of a checkpoint folder's configuration.
const ConfigFile = "config.json"

// Families, by config.json's model_type.
const (
	GPT2  = "gpt2"
	NeoX  = "gpt_neox"
	Llama = "llama"
	Qwen2 = "qwen2"
)

// architectures maps each family to the architectures values it accepts.
var architectures = map[string][]string{
	GPT2:  {"GPT2LMHeadModel"},
	NeoX:  {"GPTNeoXForCausalLM"},
	Llama: {"LlamaForCausalLM"},
	Qwen2: {"Qwen2ForCausalLM"},
}

// Config is what the engine needs of a checkpoint's config.json, with
// transformers' defaults filled in for the keys a file leaves out.
type Config struct {
	Path          string   // the config.json read
	ModelType     string   // GPT2, NeoX, Llama or Qwen2
	Architectures []string // as the file lists them (may be empty)

	Vocab   int // vocab_size: rows of the embedding and the head
	Dim     int // hidden_size (n_embd)
	Layers  int // num_hidden_layers (n_layer)
	Heads   int // num_attention_heads (n_head)
	KVHeads int // num_key_value_heads (= Heads where the family has no GQA)
	HeadDim int // head_dim, explicit or Dim/Heads
	FFN     int // intermediate_size (n_inner, default 4·Dim for GPT-2)
	MaxPos  int // max_position_embeddings (n_positions)

	NormEps float64 // layer_norm_epsilon, layer_norm_eps or rms_norm_eps
	Act     string  // activation_function / hidden_act: gelu_new, gelu or silu

	RopeTheta  float64 // rotary base (0 for GPT-2)
	RotaryDims int     // rotated columns per head: int(HeadDim·partial_rotary_factor)
	// RopeLlama3 is Llama 3.1/3.2's frequency scaling (rope_type
	// "llama3"), nil for plain RoPE.
	RopeLlama3 *nn.Llama3Scaling

	Tied             bool // tie_word_embeddings: the head is the token embedding
	ParallelResidual bool // GPT-NeoX use_parallel_residual
	QKVBias          bool // biases on the q, k, v projections (fused for GPT-2/NeoX)
	OBias            bool // bias on the attention output projection
	MLPBias          bool // biases on the MLP projections
	ScaleAttn        bool // scores scaled by 1/√HeadDim (GPT-2 scale_attn_weights; always for the others)

	BOS, EOS []int  // bos_token_id, eos_token_id (a number or a list), empty when absent
	DType    string // torch_dtype / dtype as written ("float32", "bfloat16", …), informational

	raw []byte
}

// ReadConfig reads dir/config.json. It accepts model_type gpt2, gpt_neox,
// llama and qwen2 with a matching architectures value, and both rotary
// spellings: rope_theta / rotary_emb_base / rotary_pct / partial_rotary_factor
// (transformers < 5) and rope_parameters {rope_type, rope_theta,
// partial_rotary_factor} (≥ 5). It refuses what the engine does not compute
// exactly: other model types or architectures, rope scaling other than
// "default" and "llama3", sliding-window attention, GPT-2's inverse-layer-index scaling.
// Every error names the file and the key.
func ReadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("lm: %s: no %s: not a Hugging Face checkpoint folder", path, ConfigFile)
		}
		return nil, fmt.Errorf("lm: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("lm: %s: %w", path, err)
	}
	r := &reader{path: path, raw: raw}
	c := &Config{Path: path, raw: data}
	c.ModelType = r.str("model_type", "")
	if _, ok := architectures[c.ModelType]; !ok {
		return nil, fmt.Errorf("lm: %s: model_type %q: not gpt2, gpt_neox, llama or qwen2", path, c.ModelType)
	}
	r.get("architectures", &c.Architectures)
	for _, a := range c.Architectures {
		if !slices.Contains(architectures[c.ModelType], a) {
			return nil, fmt.Errorf("lm: %s: architectures %q: not a causal LM this engine computes (model_type %s wants %s)",
				path, a, c.ModelType, strings.Join(architectures[c.ModelType], ", "))
		}
	}
	switch c.ModelType {
	case GPT2:
		c.Vocab = r.need("vocab_size")
		c.Dim = r.need("n_embd")
		c.Layers = r.need("n_layer")
		c.Heads = r.need("n_head")
		c.MaxPos = r.need("n_positions")
		c.FFN = r.intOr("n_inner", 4*c.Dim)
		c.NormEps = r.float("layer_norm_epsilon", 1e-5)
		c.Act = r.str("activation_function", "gelu_new")
		c.Tied = r.boolean("tie_word_embeddings", true)
		c.ScaleAttn = r.boolean("scale_attn_weights", true)
		c.QKVBias, c.OBias, c.MLPBias = true, true, true
		if r.boolean("scale_attn_by_inverse_layer_idx", false) {
			r.fail("scale_attn_by_inverse_layer_idx", "true is not implemented")
		}
	case NeoX:
		c.Vocab = r.need("vocab_size")
		c.Dim = r.need("hidden_size")
		c.Layers = r.need("num_hidden_layers")
		c.Heads = r.need("num_attention_heads")
		c.FFN = r.need("intermediate_size")
		c.MaxPos = r.intOr("max_position_embeddings", 2048)
		c.NormEps = r.float("layer_norm_eps", 1e-5)
		c.Act = r.str("hidden_act", "gelu")
		c.Tied = r.boolean("tie_word_embeddings", false)
		c.ParallelResidual = r.boolean("use_parallel_residual", true)
		b := r.boolean("attention_bias", true)
		c.QKVBias, c.OBias, c.MLPBias = b, b, true
	case Llama, Qwen2:
		c.Vocab = r.need("vocab_size")
		c.Dim = r.need("hidden_size")
		c.Layers = r.need("num_hidden_layers")
		c.Heads = r.need("num_attention_heads")
		c.FFN = r.need("intermediate_size")
		c.MaxPos = r.intOr("max_position_embeddings", map[string]int{Llama: 2048, Qwen2: 32768}[c.ModelType])
		c.NormEps = r.float("rms_norm_eps", 1e-6)
		c.Act = r.str("hidden_act", "silu")
		c.Tied = r.boolean("tie_word_embeddings", false)
		if c.ModelType == Llama {
			c.QKVBias = r.boolean("attention_bias", false)
			c.OBias = c.QKVBias
			c.MLPBias = r.boolean("mlp_bias", false)
		} else {
			c.QKVBias = true
			if r.boolean("use_sliding_window", false) {
				r.fail("use_sliding_window", "true is not implemented")
			}
		}
	}
	c.KVHeads = r.intOr("num_key_value_heads", c.Heads)
	if c.Heads > 0 {
		c.HeadDim = r.intOr("head_dim", c.Dim/c.Heads)
	}
	if c.ModelType != GPT2 {
		c.ScaleAttn = true
		r.rope(c)
	}
	r.ids("bos_token_id", &c.BOS)
	r.ids("eos_token_id", &c.EOS)
	c.DType = r.str("torch_dtype", r.str("dtype", ""))
	if r.err != nil {
		return nil, r.err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// check validates the sizes against each other.
func (c *Config) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("lm: %s: "+format, append([]any{c.Path}, args...)...)
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"vocab_size", c.Vocab}, {"hidden size", c.Dim}, {"layers", c.Layers}, {"attention heads", c.Heads},
		{"key-value heads", c.KVHeads}, {"head_dim", c.HeadDim}, {"intermediate size", c.FFN}, {"max positions", c.MaxPos}} {
		if v.n <= 0 {
			return bad("%s %d: must be positive", v.name, v.n)
		}
	}
	if c.Heads%c.KVHeads != 0 {
		return bad("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.Heads, c.KVHeads)
	}
	if (c.ModelType == GPT2 || c.ModelType == NeoX) && c.HeadDim*c.Heads != c.Dim {
		return bad("hidden size %d is not a multiple of %d heads", c.Dim, c.Heads)
	}
	switch c.Act {
	case "gelu_new", "gelu_pytorch_tanh", "gelu", "silu":
	default:
		return bad("activation %q: not gelu_new, gelu_pytorch_tanh, gelu or silu", c.Act)
	}
	if c.RotaryDims%2 != 0 || c.RotaryDims > c.HeadDim {
		return bad("rotary dims %d (head_dim %d × partial rotary factor): must be even and at most head_dim", c.RotaryDims, c.HeadDim)
	}
	if !(c.NormEps > 0) {
		return bad("norm epsilon %g: must be positive", c.NormEps)
	}
	return nil
}

// Raw returns config.json's bytes as read.
func (c *Config) Raw() []byte { return bytes.Clone(c.raw) }

// reader reads typed keys of one config file, keeping the first error.
type reader struct {
	path string
	raw  map[string]json.RawMessage
	err  error
}

func (r *reader) fail(key, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("lm: %s: %s: "+format, append([]any{r.path, key}, args...)...)
	}
}

// get decodes key into v; it reports whether the key is present and not null.
func (r *reader) get(key string, v any) bool {
	m, ok := r.raw[key]
	if !ok || string(m) == "null" {
		return false
	}
	if err := json.Unmarshal(m, v); err != nil {
		r.fail(key, "%s", err)
		return false
	}
	return true
}

func (r *reader) intOr(key string, def int) int {
	var f float64
	if !r.get(key, &f) {
		return def
	}
	if f != math.Trunc(f) || f < 0 || f > 1<<40 {
		r.fail(key, "%v is not a count", f)
		return def
	}
	return int(f)
}

func (r *reader) need(key string) int {
	if m, ok := r.raw[key]; !ok || string(m) == "null" {
		r.fail(key, "missing")
		return 0
	}
	return r.intOr(key, 0)
}

func (r *reader) float(key string, def float64) float64 {
	var f float64
	if !r.get(key, &f) {
		return def
	}
	return f
}

func (r *reader) str(key, def string) string {
	var s string
	if !r.get(key, &s) {
		return def
	}
	return s
}

func (r *reader) boolean(key string, def bool) bool {
	var b bool
	if !r.get(key, &b) {
		return def
	}
	return b
}

// ids reads a token id given as a number or a list of numbers.
func (r *reader) ids(key string, dst *[]int) {
	var one int
	if m, ok := r.raw[key]; ok && len(m) > 0 && m[0] == '[' {
		r.get(key, dst)
	} else if r.get(key, &one) {
		*dst = []int{one}
	}
}

// rope reads the rotary base and fraction in either spelling and refuses
// scaled variants.
func (r *reader) rope(c *Config) {
	theta, partial := 10000.0, 1.0
	if c.ModelType == NeoX {
		partial = 0.25
	}
	theta = r.float("rotary_emb_base", theta)
	theta = r.float("rope_theta", theta)
	partial = r.float("rotary_pct", partial)
	partial = r.float("partial_rotary_factor", partial)
	var scaling map[string]any
	if r.get("rope_scaling", &scaling) && scaling != nil {
		c.RopeLlama3 = r.ropeType("rope_scaling", scaling)
	}
	var params map[string]any
	if r.get("rope_parameters", &params) && params != nil {
		if l3 := r.ropeType("rope_parameters", params); l3 != nil {
			c.RopeLlama3 = l3
		}
		if v, ok := params["rope_theta"].(float64); ok {
			theta = v
		}
		if v, ok := params["partial_rotary_factor"].(float64); ok {
			partial = v
		}
	}
	if !(theta > 0) || !(partial > 0 && partial <= 1) {
		r.fail("rope", "theta %g, partial rotary factor %g out of range", theta, partial)
	}
	c.RopeTheta = theta
	c.RotaryDims = int(float64(c.HeadDim) * partial)
}

// ropeType checks a rope_scaling / rope_parameters object: "default"
// (or no type) gives nil; "llama3" its four parameters, each required;
// anything else is refused.
func (r *reader) ropeType(key string, m map[string]any) *nn.Llama3Scaling {
	t, _ := m["rope_type"].(string)
	if t == "" {
		t, _ = m["type"].(string)
	}
	switch t {
	case "", "default":
		return nil
	case "llama3":
		num := func(name string) float64 {
			v, ok := m[name].(float64)
			if !ok {
				r.fail(key, "rope type \"llama3\" needs a number %s", name)
			}
			return v
		}
		l := &nn.Llama3Scaling{Factor: num("factor"), LowFreqFactor: num("low_freq_factor"),
			HighFreqFactor: num("high_freq_factor"), OriginalMaxPos: num("original_max_position_embeddings")}
		if !(l.Factor > 0) || !(l.LowFreqFactor > 0) || !(l.HighFreqFactor > l.LowFreqFactor) || !(l.OriginalMaxPos > 0) {
			r.fail(key, "rope type \"llama3\": factor %g, low_freq_factor %g, high_freq_factor %g, original_max_position_embeddings %g: want positive, high > low",
				l.Factor, l.LowFreqFactor, l.HighFreqFactor, l.OriginalMaxPos)
		}
		return l
	}
	r.fail(key, "rope type %q is not implemented (only \"default\" and \"llama3\")", t)
	return nil
}
