// Package lmfolder writes tiny Hugging Face causal-LM folders: config.json,
// random weights in safetensors (one file or shards with an index),
// tokenizer.json with tokenizer_config.json, and generation_config.json, for
// the GPT-2, GPT-NeoX (Pythia), Llama (Llama 3 / SmolLM2) and Qwen2 families.
//
// The folders are shaped like the real small checkpoints scaled down, in
// the checkpoint's own key names and layouts, so that the engine's loader,
// the tokenizer and the GPU trainer can be tested, and the README's example
// run, without downloading anything. The writer works from the format's
// published facts (transformers' configuration and modeling files, the
// tokenizers library's JSON), not from the reader in package lm, so the two
// check each other.
//
// Everything is a function of the Spec: the same seed gives byte-identical
// folders. The tokenizer is a real byte-level BPE trained by this package
// on an embedded corpus (public-domain prose, a little code, digits) to the
// requested vocabulary size.
package lmfolder
