package lm

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"peftbench/internal/options"
	"peftbench/nn"
	"peftbench/safetensors"
)

// Model is a causal language model of one of the four families, its weights
// in float32, laid out for the engine: every linear layer is an nn.Linear
// (Weight Out×In) named by the checkpoint's own module name
// ("transformer.h.0.attn.c_attn", "gpt_neox.layers.0.attention.query_key_value",
// "model.layers.0.self_attn.q_proj"), so methods attach by the names HF PEFT
// uses in target_modules.
//
// GPT-2's Conv1D layers store W as [in, out] (y = x·W + b); Load transposes
// them into nn.Linear's [out, in] and Save transposes them back. An adapter
// on such a layer therefore sees the same math as HF PEFT's LoRA with
// fan_in_fan_out = True, which transposes the same way: lora_A is [r, in]
// and lora_B [out, r] in both, and ΔW here is the transpose of the Conv1D
// weight's ΔW there.
//
// Embedding rows past the tokenizer's vocabulary (Pythia's 50304 rows for
// 50277 tokens, Qwen's 151936) are kept: logits have Cfg.Vocab columns and
// the loss's softmax runs over all of them, as in transformers, whose
// padded rows are trained to tiny probabilities and are never targets.
//
// The model has no dropout (transformers' eval mode; a parity run switches
// HF's off), positions are 0…seq−1 in every sequence (right padding), and
// attention is causal over the whole sequence (no padding mask).
//
// Forward passes on one Model share its position buffer: run them from one
// goroutine, or Clone a model per goroutine.
type Model struct {
	Cfg *Config
	Dir string // the folder it was loaded from

	Embed  *nn.Tensor // token embedding, Vocab×Dim
	Pos    *nn.Tensor // GPT-2's learned positions (MaxPos×Dim), else nil
	Layers []*Layer
	Final  *nn.Norm   // ln_f, final_layer_norm or model.norm
	Head   *nn.Linear // the LM head; with Cfg.Tied its Weight is Embed

	rope    *nn.Rotary
	split   [3][]int // GPT-NeoX: columns of q, k, v in query_key_value's output
	prefix  string   // GPT-2 key prefix in the file: "transformer." or ""
	entries []entry  // every base tensor with its checkpoint name, in file order
	pos     []int
	posSeq  int
}

// Layer is one decoder block. GPT-2 and GPT-NeoX use QKV (fused) and Up,
// Down; Llama and Qwen2 use Q, K, V and Gate, Up, Down. O is the attention
// output projection in all.
type Layer struct {
	Norm1, Norm2    *nn.Norm
	QKV, Q, K, V, O *nn.Linear
	Gate, Up, Down  *nn.Linear
}

// entry is one base tensor: its name in the checkpoint (GPT-2 names carry
// the "transformer." prefix; the file may not) and whether it is a Conv1D
// weight stored transposed.
type entry struct {
	name   string
	t      *nn.Tensor
	conv1d bool
}

// newModel allocates a zeroed model shaped by cfg.
func newModel(cfg *Config) *Model {
	m := &Model{Cfg: cfg, prefix: "transformer."}
	d, hd := cfg.Dim, cfg.HeadDim
	qd, kvd := cfg.Heads*hd, cfg.KVHeads*hd
	tensor := func(name string, conv bool, shape ...int) *nn.Tensor {
		t := nn.New(shape...)
		t.Name = name
		m.entries = append(m.entries, entry{name: name, t: t, conv1d: conv})
		return t
	}
	linear := func(name string, in, out int, bias, conv bool) *nn.Linear {
		l := &nn.Linear{Name: name, In: in, Out: out, Weight: tensor(name+".weight", conv, out, in)}
		if bias {
			l.Bias = tensor(name+".bias", false, out)
		}
		return l
	}
	norm := func(name string) *nn.Norm {
		n := &nn.Norm{Name: name, Weight: tensor(name+".weight", false, d), Eps: cfg.NormEps}
		if cfg.ModelType == GPT2 || cfg.ModelType == NeoX {
			n.Bias = tensor(name+".bias", false, d)
		}
		return n
	}
	var headName string
	switch cfg.ModelType {
	case GPT2:
		m.Embed = tensor("transformer.wte.weight", false, cfg.Vocab, d)
		m.Pos = tensor("transformer.wpe.weight", false, cfg.MaxPos, d)
		for i := range cfg.Layers {
			p := fmt.Sprintf("transformer.h.%d.", i)
			m.Layers = append(m.Layers, &Layer{
				Norm1: norm(p + "ln_1"),
				QKV:   linear(p+"attn.c_attn", d, 3*d, true, true),
				O:     linear(p+"attn.c_proj", d, d, true, true),
				Norm2: norm(p + "ln_2"),
				Up:    linear(p+"mlp.c_fc", d, cfg.FFN, true, true),
				Down:  linear(p+"mlp.c_proj", cfg.FFN, d, true, true),
			})
		}
		m.Final = norm("transformer.ln_f")
		headName = "lm_head"
	case NeoX:
		m.Embed = tensor("gpt_neox.embed_in.weight", false, cfg.Vocab, d)
		for i := range cfg.Layers {
			p := fmt.Sprintf("gpt_neox.layers.%d.", i)
			m.Layers = append(m.Layers, &Layer{
				Norm1: norm(p + "input_layernorm"),
				Norm2: norm(p + "post_attention_layernorm"),
				QKV:   linear(p+"attention.query_key_value", d, 3*d, cfg.QKVBias, false),
				O:     linear(p+"attention.dense", d, d, cfg.OBias, false),
				Up:    linear(p+"mlp.dense_h_to_4h", d, cfg.FFN, cfg.MLPBias, false),
				Down:  linear(p+"mlp.dense_4h_to_h", cfg.FFN, d, cfg.MLPBias, false),
			})
		}
		m.Final = norm("gpt_neox.final_layer_norm")
		headName = "embed_out"
		// query_key_value's output is [head][q|k|v][hd]: per head, not
		// three blocks.
		for part := range 3 {
			for h := range cfg.Heads {
				for j := range hd {
					m.split[part] = append(m.split[part], h*3*hd+part*hd+j)
				}
			}
		}
	case Llama, Qwen2:
		m.Embed = tensor("model.embed_tokens.weight", false, cfg.Vocab, d)
		for i := range cfg.Layers {
			p := fmt.Sprintf("model.layers.%d.", i)
			m.Layers = append(m.Layers, &Layer{
				Norm1: norm(p + "input_layernorm"),
				Q:     linear(p+"self_attn.q_proj", d, qd, cfg.QKVBias, false),
				K:     linear(p+"self_attn.k_proj", d, kvd, cfg.QKVBias, false),
				V:     linear(p+"self_attn.v_proj", d, kvd, cfg.QKVBias, false),
				O:     linear(p+"self_attn.o_proj", qd, d, cfg.OBias, false),
				Norm2: norm(p + "post_attention_layernorm"),
				Gate:  linear(p+"mlp.gate_proj", d, cfg.FFN, cfg.MLPBias, false),
				Up:    linear(p+"mlp.up_proj", d, cfg.FFN, cfg.MLPBias, false),
				Down:  linear(p+"mlp.down_proj", cfg.FFN, d, cfg.MLPBias, false),
			})
		}
		m.Final = norm("model.norm")
		headName = "lm_head"
	}
	if cfg.Tied {
		m.Head = &nn.Linear{Name: headName, In: d, Out: cfg.Vocab, Weight: m.Embed}
	} else {
		m.Head = linear(headName, d, cfg.Vocab, false, false)
	}
	if cfg.ModelType != GPT2 {
		m.rope = nn.NewRotary(hd, cfg.RotaryDims, cfg.RopeTheta)
		if cfg.RopeLlama3 != nil {
			m.rope.ScaleLlama3(*cfg.RopeLlama3)
		}
	}
	return m
}

// skipped reports whether a checkpoint tensor is a known non-parameter
// buffer: GPT-2's attn.bias / attn.masked_bias causal masks, old GPT-NeoX
// files' attention.bias / attention.masked_bias, and the rotary inv_freq
// buffers some files carry (recomputed here from the config).
func skipped(family, name string) bool {
	switch {
	case strings.HasSuffix(name, "rotary_emb.inv_freq"):
		return family != GPT2
	case strings.HasSuffix(name, ".attn.bias"), strings.HasSuffix(name, ".attn.masked_bias"):
		return family == GPT2
	case strings.HasSuffix(name, ".attention.bias"), strings.HasSuffix(name, ".attention.masked_bias"):
		return family == NeoX
	}
	return false
}

// Load reads a checkpoint folder: config.json (ReadConfig) and
// model.safetensors, or model.safetensors.index.json and its shards, with
// F32, F16 or BF16 weights converted to float32. Every parameter of the
// architecture must be present with its shape; a tensor the architecture
// does not have is an error, except the known buffers (skipped) and, with a
// tied head, lm_head.weight (transformers ties it to the embedding). GPT-2
// files may name tensors with or without the "transformer." prefix.
func Load(dir string) (*Model, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	st, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, fmt.Errorf("lm: %w", err)
	}
	defer st.Close()
	m := newModel(cfg)
	m.Dir = dir
	names := st.Names()
	if cfg.ModelType == GPT2 && !slices.Contains(names, "transformer.wte.weight") && slices.Contains(names, "wte.weight") {
		m.prefix = ""
	}
	want := map[string]*entry{}
	for i := range m.entries {
		want[m.fileName(m.entries[i].name)] = &m.entries[i]
	}
	for _, name := range names {
		if _, ok := want[name]; ok || skipped(cfg.ModelType, name) || cfg.Tied && name == m.fileName(m.Head.Name+".weight") {
			continue
		}
		return nil, fmt.Errorf("lm: %s: tensor %q is not a parameter of %s (%s)", st.FileOf(name), name, cfg.ModelType, cfg.Path)
	}
	for _, e := range m.entries {
		name := m.fileName(e.name)
		info, err := st.Info(name)
		if err != nil {
			return nil, fmt.Errorf("lm: %s: missing tensor %q of %s", weightsFile(dir), name, cfg.ModelType)
		}
		shape := e.t.Shape
		if e.conv1d {
			shape = []int{shape[1], shape[0]}
		}
		if !slices.Equal(info.Shape, shape) {
			return nil, fmt.Errorf("lm: %s: tensor %q has shape %v, want %v (from %s)", st.FileOf(name), name, info.Shape, shape, cfg.Path)
		}
		if !info.DType.Float() {
			return nil, fmt.Errorf("lm: %s: tensor %q has dtype %s, want F32, F16 or BF16", st.FileOf(name), name, info.DType)
		}
		if !e.conv1d {
			if err := st.ReadInto(name, e.t.Data); err != nil {
				return nil, fmt.Errorf("lm: %w", err)
			}
			continue
		}
		tmp := make([]float32, len(e.t.Data))
		if err := st.ReadInto(name, tmp); err != nil {
			return nil, fmt.Errorf("lm: %w", err)
		}
		transpose(e.t.Data, tmp, shape[0], shape[1])
	}
	return m, nil
}

// weightsFile names the folder's weights file for messages.
func weightsFile(dir string) string {
	if p := filepath.Join(dir, safetensors.ModelFile); exists(p) {
		return p
	}
	return filepath.Join(dir, safetensors.IndexFile)
}

// fileName maps an engine name to the checkpoint's (GPT-2's prefix).
func (m *Model) fileName(name string) string {
	if m.Cfg.ModelType == GPT2 && m.prefix != "transformer." {
		if rest, ok := strings.CutPrefix(name, "transformer."); ok {
			return m.prefix + rest
		}
	}
	return name
}

// transpose writes the transpose of src (r×c) to dst (c×r).
func transpose(dst, src []float32, r, c int) {
	for i := range r {
		for j := range c {
			dst[j*r+i] = src[i*c+j]
		}
	}
}

// Clone returns a deep copy of the base model: the same config and weights
// in fresh tensors, no adapters, no tuned norms.
func (m *Model) Clone() *Model {
	c := newModel(m.Cfg)
	c.Dir, c.prefix = m.Dir, m.prefix
	for i, e := range m.entries {
		copy(c.entries[i].t.Data, e.t.Data)
	}
	return c
}

// Linears returns, per layer, the attention projections (GPT-2/NeoX: the
// fused qkv, then the output; Llama/Qwen2: q, k, v, o), then the MLP's
// (up, down; or gate, up, down), then an untied head. A tied head is not
// listed: its weight is the embedding.
func (m *Model) Linears() []*nn.Linear {
	var ls []*nn.Linear
	for _, l := range m.Layers {
		for _, x := range []*nn.Linear{l.QKV, l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} {
			if x != nil {
				ls = append(ls, x)
			}
		}
	}
	if !m.Cfg.Tied {
		ls = append(ls, m.Head)
	}
	return ls
}

// LayerShapes lists Linears as the options and targets packages see them:
// name, shape, bias, and Output set on the untied head (lm_head,
// embed_out), which HF PEFT's all-linear leaves out (internal/targets).
func (m *Model) LayerShapes() []options.LayerShape {
	ls := m.Linears()
	s := make([]options.LayerShape, len(ls))
	for i, l := range ls {
		s[i] = options.LayerShape{Name: l.Name, Out: l.Out, In: l.In, Bias: l.Bias != nil, Output: l == m.Head}
	}
	return s
}

// Norms returns each layer's two norms, then the final norm.
func (m *Model) Norms() []*nn.Norm {
	var ns []*nn.Norm
	for _, l := range m.Layers {
		ns = append(ns, l.Norm1, l.Norm2)
	}
	return append(ns, m.Final)
}

// Params returns the embeddings (with weight decay) and the norms' tensors
// (without).
func (m *Model) Params() []nn.ParamRef {
	ps := []nn.ParamRef{{Name: m.Embed.Name, T: m.Embed, LRMul: 1, Decay: true}}
	if m.Pos != nil {
		ps = append(ps, nn.ParamRef{Name: m.Pos.Name, T: m.Pos, LRMul: 1, Decay: true})
	}
	for _, n := range m.Norms() {
		ps = append(ps, nn.ParamRef{Name: n.Weight.Name, T: n.Weight, LRMul: 1})
		if n.Bias != nil {
			ps = append(ps, nn.ParamRef{Name: n.Bias.Name, T: n.Bias, LRMul: 1})
		}
	}
	return ps
}

// StateDict maps the checkpoint's tensor names (GPT-2's with the
// "transformer." prefix) to the base tensors, in the engine's layout:
// GPT-2's Conv1D weights are [out, in] here. A tied head has no entry.
func (m *Model) StateDict() map[string]*nn.Tensor {
	sd := make(map[string]*nn.Tensor, len(m.entries))
	for _, e := range m.entries {
		sd[e.name] = e.t
	}
	return sd
}

// LoadStateDict copies tensors into the model by name (see nn.Model).
func (m *Model) LoadStateDict(src map[string]*nn.Tensor) error {
	return nn.LoadState(m.StateDict(), src)
}

var _ nn.Model = (*Model)(nil)

// New returns a model shaped by cfg with every weight zero and no folder:
// for benchmarks and tests that fill StateDict's tensors themselves (a
// checkpoint folder cannot hold, say, Pythia's 50304-row vocabulary at
// lmfolder's tokenizer sizes). cfg must be consistent (as ReadConfig
// leaves it): HeadDim·Heads columns of queries, RotaryDims ≤ HeadDim.
func New(cfg *Config) *Model { return newModel(cfg) }
