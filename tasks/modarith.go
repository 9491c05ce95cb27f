package tasks

import (
	"context"
	"fmt"
	"slices"

	"peftbench/nn"
)

// modArith is modular arithmetic on a small transformer: pretrained on
// (a+b) mod p, fine-tuned on (a·b) mod p. Sequences are the four tokens
// "a op b =", op one of two operator tokens, and the model predicts the
// result at "=". Retain = every addition pair (the pretraining set).
type modArith struct{}

const modarithRecipe = 1

func init() { Register("modarith", modArith{}) }

func (modArith) Info() Info {
	return Info{
		Name: "modarith",
		Description: "modular arithmetic: transformer pretrained on (a+b) mod p, fine-tuned on (a·b) mod p; " +
			"retain = all addition pairs, target = the held-out multiplication pairs (all of them when train_frac = 1)",
		Architecture: "transformer (dim, 1 block, 4 heads, MLP 4·dim), sequence \"a op b =\", vocabulary p+3",
		Metrics:      GenericMetrics,
		Options: []Option{
			intOpt("p", 23, 3, 97, true, "the modulus"),
			intOpt("dim", 64, 8, 512, true, "model width"),
			intOpt("blocks", 1, 1, 8, true, "transformer blocks"),
			intOpt("pretrain_steps", 800, 1, 1000000, true, "pretraining steps (batch 256 pairs)"),
			floatOpt("train_frac", 1, 0.05, 1, false, "fraction of the multiplication pairs to fine-tune on; the rest are the target set (all pairs when 1)"),
			baseSeedOption,
		},
		BaseAccuracy: 0.99,
		Recipe:       modarithRecipe,
	}
}

// modarithHeads is the attention heads of modarith's transformer; dim
// must be a multiple of it.
const modarithHeads = 4

func modarithConfig(o Options) nn.TransformerConfig {
	return nn.TransformerConfig{Vocab: o.Int("p") + 3, Dim: o.Int("dim"), Heads: modarithHeads, Blocks: o.Int("blocks"), Seq: 4, MLPRatio: 4}
}

// Validate refuses a dim the attention heads do not divide (the transformer
// could not be built).
func (modArith) Validate(o Options) error {
	if d := o.Int("dim"); d%modarithHeads != 0 {
		return optionError("modarith", "dim", fmt.Sprintf("%d is not a multiple of the %d attention heads", d, modarithHeads))
	}
	return nil
}

func (modArith) Layers(o Options) []LayerShape { return transformerLayers(modarithConfig(o)) }
func (modArith) Norms(o Options) []NormShape   { return transformerNorms(modarithConfig(o)) }

type pair struct{ a, b, y int }

type modarithInst struct {
	o                Options
	p                int
	add, mulTr       []pair
	retain, tgt, val []Batch
}

func (modArith) New(o Options) (Instance, error) {
	if err := (modArith{}).Validate(o); err != nil {
		return nil, err
	}
	p := o.Int("p")
	in := &modarithInst{o: o, p: p}
	var mul []pair
	for a := range p {
		for b := range p {
			in.add = append(in.add, pair{a, b, (a + b) % p})
			mul = append(mul, pair{a, b, a * b % p})
		}
	}
	in.mulTr = mul
	tgt := mul
	if f := o.Float("train_frac"); f < 1 {
		perm := nn.NewRNG(uint64(o.Int("base_seed")), "split").Perm(len(mul))
		k := int(f * float64(len(mul)))
		in.mulTr, tgt = nil, nil
		for i, j := range perm {
			if i < k {
				in.mulTr = append(in.mulTr, mul[j])
			} else {
				tgt = append(tgt, mul[j])
			}
		}
	}
	in.retain = in.evalSet(in.add, p)
	in.tgt = in.evalSet(tgt, p+1)
	in.val = in.evalSet(validationPairs(in.mulTr, validationSize(len(tgt)), uint64(o.Int("base_seed"))), p+1)
	return in, nil
}

// batch encodes pairs with operator token op.
func (in *modarithInst) batch(ps []pair, op int) Batch {
	ids := make([]int, 4*len(ps))
	labels := make([]int, 4*len(ps))
	for i, q := range ps {
		copy(ids[4*i:], []int{q.a, op, q.b, in.p + 2})
		copy(labels[4*i:], []int{-1, -1, -1, q.y})
	}
	return Batch{IDs: ids, N: len(ps), Seq: 4, Labels: labels}
}

func (in *modarithInst) evalSet(ps []pair, op int) []Batch {
	return chunks(len(ps), 512, func(lo, hi int) Batch { return in.batch(ps[lo:hi], op) })
}

func (in *modarithInst) sample(rng *nn.RNG, ps []pair, op, size int) Batch {
	s := make([]pair, size)
	for i := range s {
		s[i] = ps[rng.Intn(len(ps))]
	}
	return in.batch(s, op)
}

func (in *modarithInst) Base(ctx context.Context, c *Cache) (Model, error) {
	spec := baseSpec{Task: "modarith", Recipe: modarithRecipe, Options: baseOptions(modArith{}.Info(), in.o)}
	seed := uint64(in.o.Int("base_seed"))
	m, _, err := c.base(ctx, spec,
		func() Model { return newLMModel(modarithConfig(in.o), nn.NewRNG(seed, "pretrain-init")) },
		func(ctx context.Context, m Model) (map[string]float64, error) {
			r := recipe{Steps: in.o.Int("pretrain_steps"), Batch: 256, LR: 5e-3, Warmup: 50, WD: 0.01}
			err := pretrain(ctx, m, r, seed, func(rng *nn.RNG, size int) Batch { return in.sample(rng, in.add, in.p, size) })
			if err != nil {
				return nil, err
			}
			_, acc := Evaluate(nil, m, in.retain)
			return map[string]float64{"retain_accuracy": acc}, nil
		})
	return m, err
}

func (in *modarithInst) TrainBatch(rng *nn.RNG, size int) Batch {
	return in.sample(rng, in.mulTr, in.p+1, size)
}
func (in *modarithInst) Target() []Batch     { return in.tgt }
func (in *modarithInst) Retain() []Batch     { return in.retain }
func (in *modarithInst) Validation() []Batch { return in.val }

// validationPairs returns k of the training pairs (all when fewer), chosen
// by the stream "validation" of seed, in their order in train. Every
// multiplication pair is a training pair or a target pair, so the
// validation pairs are training pairs: held out from Target when
// train_frac < 1, and part of it at train_frac = 1, where the task trains
// and tests on every pair.
func validationPairs(train []pair, k int, seed uint64) []pair {
	idx := nn.NewRNG(seed, "validation").Perm(len(train))
	idx = idx[:min(k, len(idx))]
	slices.Sort(idx)
	out := make([]pair, len(idx))
	for i, j := range idx {
		out[i] = train[j]
	}
	return out
}
