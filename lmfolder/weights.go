package lmfolder

import (
	"fmt"
	"math"
	"strings"

	"peftbench/nn"
	"peftbench/safetensors"
)

// tensorKind says how a tensor is initialised.
type tensorKind int

const (
	weightKind tensorKind = iota // normal(0, std)
	biasKind                     // zero (HFInit) or normal(0, std)
	gainKind                     // one (HFInit) or normal(1, std)
)

type tensorSpec struct {
	name  string
	shape []int
	kind  tensorKind
	std   float64 // weights: std relative to the base std (GPT-2's c_proj)
}

// layout lists the checkpoint's tensors in state-dict (module) order, with
// the names and shapes save_pretrained writes: GPT-2's Conv1D weights [in,
// out] under transformer., NeoX's fused per-head query_key_value [3·d, d],
// Llama/Qwen2 q/k/v/o [out, in]; no head when tied; no buffers.
func (s Spec) layout() []tensorSpec {
	d, f, l := s.Dim, s.FFN, s.Layers
	var ts []tensorSpec
	add := func(name string, kind tensorKind, shape ...int) {
		ts = append(ts, tensorSpec{name: name, shape: shape, kind: kind, std: 1})
	}
	switch s.Family {
	case "gpt2":
		add("transformer.wte.weight", weightKind, s.Rows(), d)
		add("transformer.wpe.weight", weightKind, s.Seq, d)
		for i := range l {
			p := fmt.Sprintf("transformer.h.%d.", i)
			add(p+"ln_1.weight", gainKind, d)
			add(p+"ln_1.bias", biasKind, d)
			add(p+"attn.c_attn.weight", weightKind, d, 3*d)
			add(p+"attn.c_attn.bias", biasKind, 3*d)
			add(p+"attn.c_proj.weight", weightKind, d, d)
			add(p+"attn.c_proj.bias", biasKind, d)
			add(p+"ln_2.weight", gainKind, d)
			add(p+"ln_2.bias", biasKind, d)
			add(p+"mlp.c_fc.weight", weightKind, d, f)
			add(p+"mlp.c_fc.bias", biasKind, f)
			add(p+"mlp.c_proj.weight", weightKind, f, d)
			add(p+"mlp.c_proj.bias", biasKind, d)
		}
		add("transformer.ln_f.weight", gainKind, d)
		add("transformer.ln_f.bias", biasKind, d)
		// GPT-2 scales residual projections: std / √(2·n_layer).
		for i := range ts {
			if strings.HasSuffix(ts[i].name, "c_proj.weight") {
				ts[i].std = 1 / math.Sqrt(2*float64(l))
			}
		}
	case "neox":
		add("gpt_neox.embed_in.weight", weightKind, s.Rows(), d)
		for i := range l {
			p := fmt.Sprintf("gpt_neox.layers.%d.", i)
			add(p+"input_layernorm.weight", gainKind, d)
			add(p+"input_layernorm.bias", biasKind, d)
			add(p+"post_attention_layernorm.weight", gainKind, d)
			add(p+"post_attention_layernorm.bias", biasKind, d)
			add(p+"attention.query_key_value.weight", weightKind, 3*d, d)
			add(p+"attention.query_key_value.bias", biasKind, 3*d)
			add(p+"attention.dense.weight", weightKind, d, d)
			add(p+"attention.dense.bias", biasKind, d)
			add(p+"mlp.dense_h_to_4h.weight", weightKind, f, d)
			add(p+"mlp.dense_h_to_4h.bias", biasKind, f)
			add(p+"mlp.dense_4h_to_h.weight", weightKind, d, f)
			add(p+"mlp.dense_4h_to_h.bias", biasKind, d)
		}
		add("gpt_neox.final_layer_norm.weight", gainKind, d)
		add("gpt_neox.final_layer_norm.bias", biasKind, d)
		add("embed_out.weight", weightKind, s.Rows(), d)
	case "llama", "qwen2":
		hd := s.HeadDim()
		q, kv := s.Heads*hd, s.KVHeads*hd
		add("model.embed_tokens.weight", weightKind, s.Rows(), d)
		for i := range l {
			p := fmt.Sprintf("model.layers.%d.", i)
			add(p+"self_attn.q_proj.weight", weightKind, q, d)
			if s.Family == "qwen2" {
				add(p+"self_attn.q_proj.bias", biasKind, q)
			}
			add(p+"self_attn.k_proj.weight", weightKind, kv, d)
			if s.Family == "qwen2" {
				add(p+"self_attn.k_proj.bias", biasKind, kv)
			}
			add(p+"self_attn.v_proj.weight", weightKind, kv, d)
			if s.Family == "qwen2" {
				add(p+"self_attn.v_proj.bias", biasKind, kv)
			}
			add(p+"self_attn.o_proj.weight", weightKind, d, q)
			add(p+"mlp.gate_proj.weight", weightKind, f, d)
			add(p+"mlp.up_proj.weight", weightKind, f, d)
			add(p+"mlp.down_proj.weight", weightKind, d, f)
			add(p+"input_layernorm.weight", gainKind, d)
			add(p+"post_attention_layernorm.weight", gainKind, d)
		}
		add("model.norm.weight", gainKind, d)
		// SmolLM2 and Qwen2.5's small models tie the head: no lm_head.weight.
	}
	return ts
}

// tensors draws the weights. Each tensor has its own stream, seeded by the
// seed and its name, so adding a layer leaves the others' values unchanged.
func (s Spec) tensors() []safetensors.Tensor {
	base := s.InitStd
	if base == 0 {
		base = initializerRange
	}
	var out []safetensors.Tensor
	for _, t := range s.layout() {
		n := 1
		for _, d := range t.shape {
			n *= d
		}
		data := make([]float32, n)
		r := nn.NewRNG(s.Seed, "lmfolder "+t.name)
		switch {
		case t.kind == weightKind:
			std := float32(base * t.std)
			for i := range data {
				data[i] = std * r.Norm()
			}
		case t.kind == gainKind && s.HFInit:
			for i := range data {
				data[i] = 1
			}
		case t.kind == gainKind:
			for i := range data {
				data[i] = 1 + float32(base)*r.Norm()
			}
		case !s.HFInit: // bias
			for i := range data {
				data[i] = float32(base) * r.Norm()
			}
		}
		out = append(out, safetensors.Tensor{Name: t.name, DType: s.DType, Shape: t.shape, Data: data})
	}
	return out
}

// initializerRange is every family's config default (initializer_range).
const initializerRange = 0.02
