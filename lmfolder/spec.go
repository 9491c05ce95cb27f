package lmfolder

import (
	"fmt"

	"peftbench/safetensors"
)

// Families lists the families Write knows, as make-lm's --family spells them.
var Families = []string{"gpt2", "neox", "llama", "qwen2"}

// Spec describes a checkpoint to write. Zero sizes take the family's
// default (Defaults); everything written is a function of the Spec.
type Spec struct {
	Family string            // gpt2, neox, llama or qwen2
	Seed   uint64            // weights (and --data) seed
	DType  safetensors.DType // F32, F16 or BF16; empty: the family's usual (GPT-2 F32, Pythia F16, SmolLM2/Qwen2.5 BF16)
	Shards int               // ≤ 1: model.safetensors; else shards + index

	Layers  int // num_hidden_layers / n_layer
	Dim     int // hidden_size / n_embd
	Heads   int // query heads
	KVHeads int // key/value heads (llama, qwen2; gpt2 and neox have Heads)
	FFN     int // intermediate_size / n_inner
	Vocab   int // the tokenizer's vocabulary, special tokens included
	Seq     int // max_position_embeddings / n_positions

	// RopeParameters writes transformers ≥ 5's spelling of the config:
	// rope_parameters {rope_type, rope_theta[, partial_rotary_factor]} and
	// dtype, where older files have rope_theta / rotary_pct /
	// rotary_emb_base / rope_scaling and torch_dtype.
	RopeParameters bool

	// HFInit initialises as transformers does: zero biases, unit norm
	// gains. By default biases and norm parameters are drawn too (normal,
	// std InitStd around 0 and 1), so a reader that drops a bias or a norm
	// gain gives different logits.
	HFInit bool
	// InitStd is the weights' standard deviation; 0 means the config's
	// initializer_range, 0.02 (GPT-2's c_proj scaled by 1/√(2·layers) as
	// GPT-2 does).
	InitStd float64
}

// family holds what differs between the families.
type family struct {
	arch, modelType string
	dtype           safetensors.DType
	layers, dim     int
	heads, kvHeads  int
	ffn             func(dim int) int
	seq             int
	ropeTheta       float64
	eps             float64
	tied            bool
}

var families = map[string]family{
	"gpt2": {arch: "GPT2LMHeadModel", modelType: "gpt2", dtype: safetensors.F32,
		layers: 2, dim: 64, heads: 4, ffn: func(d int) int { return 4 * d }, seq: 1024, eps: 1e-5, tied: true},
	"neox": {arch: "GPTNeoXForCausalLM", modelType: "gpt_neox", dtype: safetensors.F16,
		layers: 2, dim: 64, heads: 4, ffn: func(d int) int { return 4 * d }, seq: 2048, ropeTheta: 10000, eps: 1e-5},
	"llama": {arch: "LlamaForCausalLM", modelType: "llama", dtype: safetensors.BF16,
		layers: 2, dim: 64, heads: 4, kvHeads: 2, ffn: func(d int) int { return 3 * d }, seq: 2048, ropeTheta: 1e5, eps: 1e-5, tied: true},
	"qwen2": {arch: "Qwen2ForCausalLM", modelType: "qwen2", dtype: safetensors.BF16,
		layers: 2, dim: 64, heads: 4, kvHeads: 2, ffn: func(d int) int { return 4 * d }, seq: 32768, ropeTheta: 1e6, eps: 1e-6, tied: true},
}

// DefaultVocab is the default tokenizer vocabulary (special tokens
// included); NeoX's embedding is padded beyond it to a multiple of 64.
const DefaultVocab = 500

// Limits keep a make-lm folder small: these are tiny checkpoints.
const (
	MaxLayers = 64
	MaxDim    = 4096
	MaxVocab  = 4096 // the embedded corpus supports about this many merges
	MaxSeq    = 1 << 17
	MaxShards = 64
	// MaxParams bounds the weights (GPT-2 124M is 1.24e8).
	MaxParams = 200_000_000
)

// Defaults returns the family's default Spec: 2 layers, width 64, 4 heads
// (2 key/value heads for llama and qwen2), vocabulary 500, the family's
// dtype and position count.
func Defaults(name string) (Spec, error) {
	f, ok := families[name]
	if !ok {
		return Spec{}, fmt.Errorf("lmfolder: family %q: want gpt2, neox, llama or qwen2", name)
	}
	kv := f.kvHeads
	if kv == 0 {
		kv = f.heads
	}
	return Spec{Family: name, DType: f.dtype, Layers: f.layers, Dim: f.dim, Heads: f.heads, KVHeads: kv,
		FFN: f.ffn(f.dim), Vocab: DefaultVocab, Seq: f.seq}, nil
}

// resolved fills s's zero fields from the family defaults and checks it.
func (s Spec) resolved() (Spec, family, error) {
	d, err := Defaults(s.Family)
	if err != nil {
		return s, family{}, err
	}
	f := families[s.Family]
	fill := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	fill(&s.Layers, d.Layers)
	fill(&s.Dim, d.Dim)
	fill(&s.Heads, d.Heads)
	if s.Family == "gpt2" || s.Family == "neox" {
		if s.KVHeads != 0 && s.KVHeads != s.Heads {
			return s, f, fmt.Errorf("lmfolder: %s: kv-heads %d: the family has no grouped-query attention (want %d or 0)", s.Family, s.KVHeads, s.Heads)
		}
		s.KVHeads = s.Heads
	} else if s.KVHeads == 0 {
		if s.Heads == d.Heads {
			s.KVHeads = d.KVHeads
		} else {
			s.KVHeads = s.Heads
		}
	}
	if s.FFN == 0 {
		s.FFN = f.ffn(s.Dim)
	}
	fill(&s.Vocab, d.Vocab)
	fill(&s.Seq, d.Seq)
	if s.DType == "" {
		s.DType = d.DType
	}
	switch {
	case s.DType != safetensors.F32 && s.DType != safetensors.F16 && s.DType != safetensors.BF16:
		return s, f, fmt.Errorf("lmfolder: dtype %q: want F32, F16 or BF16", s.DType)
	case s.Layers < 1 || s.Layers > MaxLayers:
		return s, f, fmt.Errorf("lmfolder: layers %d: want 1 to %d", s.Layers, MaxLayers)
	case s.Dim < 1 || s.Dim > MaxDim:
		return s, f, fmt.Errorf("lmfolder: dim %d: want 1 to %d", s.Dim, MaxDim)
	case s.Heads < 1 || s.Dim%s.Heads != 0:
		return s, f, fmt.Errorf("lmfolder: heads %d: want a divisor of dim %d", s.Heads, s.Dim)
	case s.KVHeads < 1 || s.Heads%s.KVHeads != 0:
		return s, f, fmt.Errorf("lmfolder: kv-heads %d: want a divisor of heads %d", s.KVHeads, s.Heads)
	case (s.Family != "gpt2") && (s.Dim/s.Heads)%2 != 0:
		return s, f, fmt.Errorf("lmfolder: head dim %d (dim %d / heads %d): rotary embeddings need it even", s.Dim/s.Heads, s.Dim, s.Heads)
	case s.Family == "neox" && int(float64(s.Dim/s.Heads)*0.25)%2 != 0:
		return s, f, fmt.Errorf("lmfolder: neox head dim %d: rotary_pct 0.25 of it must be even (head dim a multiple of 8)", s.Dim/s.Heads)
	case s.FFN < 1 || s.FFN > 8*MaxDim:
		return s, f, fmt.Errorf("lmfolder: ffn %d: want 1 to %d", s.FFN, 8*MaxDim)
	case s.Vocab < minVocab(s.Family) || s.Vocab > MaxVocab:
		return s, f, fmt.Errorf("lmfolder: vocab %d: want %d (bytes and special tokens) to %d", s.Vocab, minVocab(s.Family), MaxVocab)
	case s.Seq < 1 || s.Seq > MaxSeq:
		return s, f, fmt.Errorf("lmfolder: seq %d: want 1 to %d", s.Seq, MaxSeq)
	case s.Shards < 0 || s.Shards > MaxShards:
		return s, f, fmt.Errorf("lmfolder: shards %d: want 0 to %d", s.Shards, MaxShards)
	case s.InitStd < 0 || s.InitStd > 10:
		return s, f, fmt.Errorf("lmfolder: init std %g: want 0 (the config's) to 10", s.InitStd)
	}
	if n := s.Params(); n > MaxParams {
		return s, f, fmt.Errorf("lmfolder: %d parameters: above the %d limit", n, MaxParams)
	}
	return s, f, nil
}

// Rows is the embedding's row count: the vocabulary, padded for NeoX to
// the next multiple of 64 beyond it, as Pythia pads its 50277 tokens to
// 50304 rows (so a reader must ignore rows the tokenizer never produces).
func (s Spec) Rows() int {
	if s.Family == "neox" {
		return (s.Vocab/64 + 1) * 64
	}
	return s.Vocab
}

// HeadDim is hidden size / query heads.
func (s Spec) HeadDim() int { return s.Dim / s.Heads }

// Params counts the parameters the folder holds (tied heads once).
func (s Spec) Params() int {
	n := 0
	for _, t := range s.layout() {
		p := 1
		for _, d := range t.shape {
			p *= d
		}
		n += p
	}
	return n
}

// minVocab is the byte alphabet plus the family's special tokens.
func minVocab(family string) int {
	return 256 + map[string]int{"gpt2": 1, "neox": 2, "llama": 2, "qwen2": 3}[family]
}
