// Package lm loads Hugging Face causal-LM checkpoint folders into the
// builtin engine: GPT-2, GPT-NeoX (Pythia), Llama (SmolLM2, TinyLlama) and
// Qwen2, computed in float32 exactly as transformers computes them.
//
// ReadConfig reads config.json; Load reads the weights (model.safetensors or
// a sharded index; F32, F16, BF16) into a Model, an nn.Model whose linear
// layers carry the checkpoint's module names, so methods attach to them by
// the names HF PEFT uses. Model.Hidden, Logits and Loss are the forward
// passes; Loss computes the shifted causal-LM cross-entropy in chunks,
// never forming the tokens × vocabulary logits. Save writes the folder
// back; SaveAdapter writes a tuned model's LoRA-family adapter as a Hugging
// Face PEFT folder (adapter_config.json + adapter_model.safetensors, PEFT
// key names) that peft loads and `bench spectra --adapter` reads. The facts
// each family relies on are in shared/reference/lm-architectures.md; the
// parity test checks them against
// an independent torch forward (testdata/parity.py), LoRA training with
// AdamW and clipping against an independent torch training
// (testdata/lora_train.py), and saved adapters against an independent PEFT
// folder reader (testdata/peft_apply.py).
package lm
