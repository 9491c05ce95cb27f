package tasks

import (
	"context"
	"fmt"

	"peftbench/nn"
)

// textCode is continued pretraining under a domain shift, the setting of
// "LoRA Learns Less and Forgets Less" (Biderman et al. 2024, arXiv
// 2405.09673) at small scale: a character-level transformer LM pretrained
// on English prose is fine-tuned on source code. Both come from the Go
// standard library under GOROOT (see buildCorpus and splitSource): prose
// is its comments, code the rest. Target = held-out code, retain =
// held-out prose.
type textCode struct{}

// textcodeRecipe versions the pretraining recipe and the corpus
// extraction (corpusVersion, corpusPackages enter the data fingerprint).
const textcodeRecipe = 1

func init() { Register("text-code", textCode{}) }

func (textCode) Info() Info {
	return Info{
		Name: "text-code",
		Description: "domain shift: character-level transformer LM pretrained on English prose (comments of Go standard-library packages), " +
			"fine-tuned on code (the same files without comments); target = next-char accuracy on held-out code, " +
			"retain = held-out prose (files split by FNV hash of their path)",
		Architecture: "character transformer LM (dim, blocks, heads, MLP 4·dim), seq chars, vocabulary 98",
		Metrics:      GenericMetrics,
		Options: []Option{
			intOpt("dim", 64, 8, 1024, true, "model width"),
			intOpt("blocks", 2, 1, 12, true, "transformer blocks"),
			intOpt("heads", 4, 1, 64, true, "attention heads; must divide dim"),
			intOpt("seq", 64, 8, 1024, true, "characters per window (context length)"),
			intOpt("pretrain_steps", 1200, 1, 1000000, true, "pretraining steps on prose (batch 32 windows)"),
			intOpt("eval_size", 256, 8, 100000, false, "windows in each held-out evaluation set (target code, retain prose), evenly spaced"),
			floatOpt("code_frac", 1, 0, 1, false, "fraction of fine-tuning windows drawn from code; the rest from training prose (replay)"),
			baseSeedOption,
		},
		BaseAccuracy: 0.47,
		Recipe:       textcodeRecipe,
	}
}

func textcodeConfig(o Options) nn.TransformerConfig {
	return nn.TransformerConfig{Vocab: charVocab, Dim: o.Int("dim"), Heads: o.Int("heads"), Blocks: o.Int("blocks"), Seq: o.Int("seq"), MLPRatio: 4}
}

func (textCode) Layers(o Options) []LayerShape { return transformerLayers(textcodeConfig(o)) }
func (textCode) Norms(o Options) []NormShape   { return transformerNorms(textcodeConfig(o)) }

type textcodeInst struct {
	o                Options
	c                *corpus
	seq              int
	retain, tgt, val []Batch
}

// Validate refuses heads that do not divide dim (the transformer could not
// be built), at sweep-load time.
func (textCode) Validate(o Options) error {
	if d, h := o.Int("dim"), o.Int("heads"); d%h != 0 {
		return optionError("text-code", "heads", fmt.Sprintf("%d does not divide dim %d", h, d))
	}
	return nil
}

func (textCode) New(o Options) (Instance, error) {
	if err := (textCode{}).Validate(o); err != nil {
		return nil, err
	}
	c, err := loadGoCorpus()
	if err != nil {
		return nil, err
	}
	seq := o.Int("seq")
	for _, s := range []struct {
		name   string
		stream []uint8
	}{{"training prose", c.trainProse}, {"held-out prose", c.heldProse}, {"training code", c.trainCode}, {"held-out code", c.heldCode}} {
		if len(s.stream) <= seq {
			return nil, fmt.Errorf("tasks: text-code: %s has %d characters, fewer than seq+1 = %d", s.name, len(s.stream), seq+1)
		}
	}
	in := &textcodeInst{o: o, c: c, seq: seq}
	n := o.Int("eval_size")
	in.retain = evalWindows(c.heldProse, seq, n)
	in.tgt = evalWindows(c.heldCode, seq, n)
	in.val = validationWindows(c.heldCode, seq, n)
	return in, nil
}

// windows encodes the windows of stream starting at starts as a batch:
// ids are the seq characters from each start, labels the next character
// of each (the language-model shift), one label per logits row.
func windows(stream []uint8, seq int, starts []int) Batch {
	ids := make([]int, len(starts)*seq)
	labels := make([]int, len(starts)*seq)
	for i, s := range starts {
		for j := range seq {
			ids[i*seq+j] = int(stream[s+j])
			labels[i*seq+j] = int(stream[s+j+1])
		}
	}
	return Batch{IDs: ids, N: len(starts), Seq: seq, Labels: labels}
}

// evalWindows returns n windows of stream at evenly spaced starts (the
// whole stream is covered, no randomness), in batches of at most 64.
func evalWindows(stream []uint8, seq, n int) []Batch {
	span := len(stream) - seq - 1 // the last valid start
	starts := make([]int, n)
	for i := range starts {
		if n > 1 {
			starts[i] = int(int64(i) * int64(span) / int64(n-1))
		}
	}
	return chunks(n, 64, func(lo, hi int) Batch { return windows(stream, seq, starts[lo:hi]) })
}

// validationWindows returns validationSize(n) windows of stream between
// those of evalWindows(stream, seq, n): each starts halfway between two
// consecutive target starts, the gaps chosen evenly along the stream, in
// batches of at most 64. Held-out code is the only code the training
// batches never see, so validation shares the target's held-out files but
// not its windows; while consecutive target starts lie at least 2·(seq+1)
// characters apart (434 apart with the default options, 1760 in the
// nightly sweep) the two sets do not even share a character.
func validationWindows(stream []uint8, seq, n int) []Batch {
	span := len(stream) - seq - 1
	start := func(i int) int { return int(int64(i) * int64(span) / int64(n-1)) }
	k := validationSize(n)
	starts := make([]int, k)
	for v := range starts {
		g := (2*v + 1) * (n - 1) / (2 * k) // the gap between target windows g and g+1
		starts[v] = (start(g) + start(g+1)) / 2
	}
	return chunks(k, 64, func(lo, hi int) Batch { return windows(stream, seq, starts[lo:hi]) })
}

// sample draws size windows of stream at uniform starts from rng.
func sample(rng *nn.RNG, stream []uint8, seq, size int) Batch {
	starts := make([]int, size)
	for i := range starts {
		starts[i] = rng.Intn(len(stream) - seq)
	}
	return windows(stream, seq, starts)
}

func (in *textcodeInst) Base(ctx context.Context, c *Cache) (Model, error) {
	spec := baseSpec{Task: "text-code", Recipe: textcodeRecipe, Options: baseOptions(textCode{}.Info(), in.o), Data: in.c.fingerprint}
	seed := uint64(in.o.Int("base_seed"))
	m, _, err := c.base(ctx, spec,
		func() Model { return newLMModel(textcodeConfig(in.o), nn.NewRNG(seed, "pretrain-init")) },
		func(ctx context.Context, m Model) (map[string]float64, error) {
			steps := in.o.Int("pretrain_steps")
			r := recipe{Steps: steps, Batch: 32, LR: 6e-3, Warmup: min(50, steps/10), WD: 0.01}
			err := pretrain(ctx, m, r, seed, func(rng *nn.RNG, size int) Batch {
				return sample(rng, in.c.trainProse, in.seq, size)
			})
			if err != nil {
				return nil, err
			}
			loss, acc := Evaluate(nil, m, in.retain)
			return map[string]float64{"retain_loss": loss, "retain_accuracy": acc}, nil
		})
	return m, err
}

// TrainBatch draws code windows, each replaced by a training-prose window
// with probability 1 − code_frac.
func (in *textcodeInst) TrainBatch(rng *nn.RNG, size int) Batch {
	f := in.o.Float("code_frac")
	if f >= 1 {
		return sample(rng, in.c.trainCode, in.seq, size)
	}
	ids := make([]int, 0, size*in.seq)
	labels := make([]int, 0, size*in.seq)
	for range size {
		s := in.c.trainCode
		if rng.Float64() >= f {
			s = in.c.trainProse
		}
		w := windows(s, in.seq, []int{rng.Intn(len(s) - in.seq)})
		ids, labels = append(ids, w.IDs...), append(labels, w.Labels...)
	}
	return Batch{IDs: ids, N: size, Seq: in.seq, Labels: labels}
}

func (in *textcodeInst) Target() []Batch     { return in.tgt }
func (in *textcodeInst) Retain() []Batch     { return in.retain }
func (in *textcodeInst) Validation() []Batch { return in.val }
