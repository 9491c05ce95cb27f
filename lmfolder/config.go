package lmfolder

import "peftbench/safetensors"

// transformersVersion is the version the configs claim: the layout is
// transformers 4.46's save_pretrained (to_diff_dict: every key of the
// family's config class, the base class's keys where they differ from its
// defaults), or 5.0's with Spec.RopeParameters.
const (
	transformersVersion   = "4.46.3"
	transformersVersionV5 = "5.0.0"
)

var torchDType = map[safetensors.DType]string{
	safetensors.F32: "float32", safetensors.F16: "float16", safetensors.BF16: "bfloat16",
}

// configJSON renders config.json as transformers writes it: json.dumps(d,
// indent=2, sort_keys=True) + "\n".
func (s Spec) configJSON(f family, tok *bpeTokenizer) []byte {
	c := obj{
		{"architectures", []string{f.arch}},
		{"model_type", f.modelType},
		{"bos_token_id", tok.bos},
		{"eos_token_id", tok.eos},
		{"initializer_range", pyFloat(initializerRange)},
		{"use_cache", true},
		{"vocab_size", s.Rows()},
	}
	add := func(k string, v any) { c = append(c, member{k, v}) }
	rope := func(extra ...member) {
		if s.RopeParameters {
			p := obj{{"rope_type", "default"}}
			p = append(p, extra...)
			add("rope_parameters", p)
		}
	}
	switch s.Family {
	case "gpt2":
		add("activation_function", "gelu_new")
		add("attn_pdrop", pyFloat(0.1))
		add("embd_pdrop", pyFloat(0.1))
		add("resid_pdrop", pyFloat(0.1))
		add("layer_norm_epsilon", pyFloat(f.eps))
		add("n_embd", s.Dim)
		add("n_head", s.Heads)
		add("n_inner", nilIfDefault(s.FFN, 4*s.Dim))
		add("n_layer", s.Layers)
		add("n_positions", s.Seq)
		add("reorder_and_upcast_attn", false)
		add("scale_attn_by_inverse_layer_idx", false)
		add("scale_attn_weights", true)
		add("summary_activation", nil)
		add("summary_first_dropout", pyFloat(0.1))
		add("summary_proj_to_labels", true)
		add("summary_type", "cls_index")
		add("summary_use_proj", true)
		// tie_word_embeddings true is both classes' default: not written.
	case "neox":
		add("attention_bias", true)
		add("attention_dropout", pyFloat(0))
		add("classifier_dropout", pyFloat(0.1))
		add("hidden_act", "gelu")
		add("hidden_dropout", pyFloat(0))
		add("hidden_size", s.Dim)
		add("intermediate_size", s.FFN)
		add("layer_norm_eps", pyFloat(f.eps))
		add("max_position_embeddings", s.Seq)
		add("num_attention_heads", s.Heads)
		add("num_hidden_layers", s.Layers)
		add("tie_word_embeddings", false)
		add("use_parallel_residual", true)
		if s.RopeParameters {
			rope(member{"rope_theta", int(f.ropeTheta)}, member{"partial_rotary_factor", pyFloat(0.25)})
		} else {
			add("rotary_pct", pyFloat(0.25))
			add("rotary_emb_base", int(f.ropeTheta))
			// 4.4x keeps the generic spellings beside NeoX's own.
			add("partial_rotary_factor", pyFloat(0.25))
			add("rope_theta", int(f.ropeTheta))
			add("rope_scaling", nil)
		}
	case "llama", "qwen2":
		add("attention_dropout", pyFloat(0))
		add("hidden_act", "silu")
		add("hidden_size", s.Dim)
		add("intermediate_size", s.FFN)
		add("max_position_embeddings", s.Seq)
		add("num_attention_heads", s.Heads)
		add("num_hidden_layers", s.Layers)
		add("num_key_value_heads", s.KVHeads)
		add("rms_norm_eps", pyFloat(f.eps))
		add("tie_word_embeddings", f.tied)
		if s.Family == "llama" {
			add("attention_bias", false)
			add("head_dim", s.HeadDim())
			add("mlp_bias", false)
			add("pretraining_tp", 1)
		} else {
			add("max_window_layers", s.Layers)
			add("sliding_window", s.Seq)
			add("use_sliding_window", false)
		}
		if s.RopeParameters {
			rope(member{"rope_theta", pyFloat(f.ropeTheta)})
		} else {
			add("rope_scaling", nil)
			add("rope_theta", pyFloat(f.ropeTheta))
		}
	}
	if s.RopeParameters {
		add("dtype", torchDType[s.DType])
		add("transformers_version", transformersVersionV5)
	} else {
		add("torch_dtype", torchDType[s.DType])
		add("transformers_version", transformersVersion)
	}
	return pyConfig.marshal(c, true)
}

// nilIfDefault is GPT-2's n_inner: null means 4·n_embd.
func nilIfDefault(v, def int) any {
	if v == def {
		return nil
	}
	return v
}

// generationConfigJSON is what save_pretrained writes beside a model
// created from a config.
func (s Spec) generationConfigJSON(tok *bpeTokenizer) []byte {
	v := transformersVersion
	if s.RopeParameters {
		v = transformersVersionV5
	}
	return pyConfig.marshal(obj{
		{"_from_model_config", true},
		{"bos_token_id", tok.bos},
		{"eos_token_id", tok.eos},
		{"transformers_version", v},
	}, true)
}
