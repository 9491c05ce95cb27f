package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"peftbench/lmfolder"
	"peftbench/safetensors"
)

func init() {
	register(command{
		Name:    "make-lm",
		Order:   72,
		Summary: "write a tiny random Hugging Face causal-LM folder (gpt2, neox, llama, qwen2) for tests and demos",
		Run:     runMakeLM,
	})
}

// runMakeLM is `bench make-lm --family F --out DIR [...]`: a checkpoint
// folder shaped like the family's small real models, random weights from
// the seed, a BPE tokenizer trained on an embedded corpus (package
// lmfolder), and with --data a demo data set in DIR-data.
func runMakeLM(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("make-lm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	family := fs.String("family", "", "gpt2, neox (Pythia), llama (Llama 3 / SmolLM2 style) or qwen2")
	out := fs.String("out", "", "folder to write (absent or empty)")
	seed := fs.Uint64("seed", 0, "seed of the weights and of --data")
	dtype := fs.String("dtype", "", "f32, f16 or bf16 (default: the family's, as its real checkpoints ship: gpt2 f32, neox f16, llama and qwen2 bf16)")
	shards := fs.Int("shards", 1, "weight files: 1 writes model.safetensors, N > 1 shards and model.safetensors.index.json")
	layers := fs.Int("layers", 0, "layers (default 2)")
	dim := fs.Int("dim", 0, "hidden size (default 64)")
	heads := fs.Int("heads", 0, "attention heads (default 4)")
	kvHeads := fs.Int("kv-heads", 0, "key/value heads, llama and qwen2 (default 2)")
	ffn := fs.Int("ffn", 0, "feed-forward width (default 4·dim; llama 3·dim)")
	vocab := fs.Int("vocab", 0, fmt.Sprintf("tokenizer vocabulary incl. special tokens (default %d; neox pads the embedding to the next multiple of 64 beyond it)", lmfolder.DefaultVocab))
	seq := fs.Int("seq", 0, "positions (default: gpt2 1024, neox and llama 2048, qwen2 32768)")
	ropeParams := fs.Bool("rope-parameters", false, "write transformers ≥ 5's config spelling (rope_parameters, dtype)")
	hfInit := fs.Bool("hf-init", false, "initialise as transformers does (zero biases, unit norms) instead of drawing them too")
	initStd := fs.Float64("init-std", 0, "weights' standard deviation (default the config's initializer_range, 0.02)")
	data := fs.Bool("data", false, "also write a demo data set (train, eval, retain, qa, qa_eval .jsonl) into --data-dir")
	dataDir := fs.String("data-dir", "", "folder of --data (default: the --out folder's name with -data, beside it)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench make-lm --family gpt2|neox|llama|qwen2 --out DIR [--seed N] [--dtype f32|f16|bf16] [--shards N]")
		fmt.Fprintln(stderr, "                     [--layers N --dim N --heads N --kv-heads N --ffn N --vocab N --seq N] [--data]")
		fmt.Fprintln(stderr, "\nWrites a tiny Hugging Face causal-LM folder with random weights: config.json as transformers")
		fmt.Fprintln(stderr, "saves it, model.safetensors (or shards and an index) in the checkpoint's own names and layouts,")
		fmt.Fprintln(stderr, "tokenizer.json (a byte-level BPE trained on an embedded corpus), tokenizer_config.json and")
		fmt.Fprintln(stderr, "generation_config.json. The same flags give a byte-identical folder. For a real checkpoint,")
		fmt.Fprintln(stderr, "fetch it once instead: huggingface-cli download EleutherAI/pythia-14m --local-dir $PEFTBENCH_MODELS/pythia-14m")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, interleave(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return usageErrorf("bench make-lm: unexpected argument %q", fs.Arg(0))
	}
	if *family == "" || *out == "" {
		fs.Usage()
		return usageErrorf("bench make-lm: --family and --out are required")
	}
	spec := lmfolder.Spec{Family: *family, Seed: *seed, Shards: *shards, Layers: *layers, Dim: *dim,
		Heads: *heads, KVHeads: *kvHeads, FFN: *ffn, Vocab: *vocab, Seq: *seq,
		RopeParameters: *ropeParams, HFInit: *hfInit, InitStd: *initStd}
	switch strings.ToLower(*dtype) {
	case "":
	case "f32", "float32":
		spec.DType = safetensors.F32
	case "f16", "float16":
		spec.DType = safetensors.F16
	case "bf16", "bfloat16":
		spec.DType = safetensors.BF16
	default:
		return usageErrorf("bench make-lm: --dtype %q: want f32, f16 or bf16", *dtype)
	}
	if _, err := lmfolder.Defaults(*family); err != nil {
		return usageErrorf("bench make-lm: --family %q: want gpt2, neox, llama or qwen2", *family)
	}
	files, s, err := lmfolder.Write(*out, spec)
	if err != nil {
		return fmt.Errorf("bench make-lm: %w", err)
	}
	fmt.Fprintf(stdout, "%s: %s, %d layers, dim %d, %d/%d heads, ffn %d, vocab %d (%d rows), %d positions, %s, %d parameters, %d files\n",
		*out, s.Family, s.Layers, s.Dim, s.Heads, s.KVHeads, s.FFN, s.Vocab, s.Rows(), s.Seq, s.DType, s.Params(), len(files))
	if *data {
		dir := *dataDir
		if dir == "" {
			dir = filepath.Clean(*out) + "-data"
		}
		dfiles, err := lmfolder.WriteData(dir, *seed)
		if err != nil {
			return fmt.Errorf("bench make-lm: %w", err)
		}
		fmt.Fprintf(stdout, "%s: %d data files\n", dir, len(dfiles))
	}
	return nil
}
