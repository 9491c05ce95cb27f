package tasks

import (
	"context"
	"fmt"
	"math"

	"peftbench/nn"
)

// mlpModel is an nn.MLP classifier on Batch.X.
type mlpModel struct {
	*nn.MLP
	sizes []int
}

func newMLPModel(sizes []int, rng *nn.RNG) *mlpModel {
	return &mlpModel{MLP: nn.NewMLP(sizes, rng), sizes: sizes}
}

func (m *mlpModel) Logits(g *nn.Graph, b Batch) *nn.Tensor { return m.Forward(g, b.X) }

func (m *mlpModel) Clone() Model {
	c := newMLPModel(m.sizes, nn.NewRNG(0, "clone"))
	c.Act = m.Act
	mustLoad(c, m)
	return c
}

func mlpLayers(sizes []int) []LayerShape {
	var ls []LayerShape
	for i := 0; i+1 < len(sizes); i++ {
		name := fmt.Sprintf("fc%d", i+1)
		if i+2 == len(sizes) {
			name = "head"
		}
		ls = append(ls, LayerShape{Name: name, Out: sizes[i+1], In: sizes[i], Bias: true})
	}
	return ls
}

// lmModel is an nn.Transformer on Batch.IDs.
type lmModel struct {
	*nn.Transformer
}

func newLMModel(cfg nn.TransformerConfig, rng *nn.RNG) *lmModel {
	return &lmModel{nn.NewTransformer(cfg, rng)}
}

func (m *lmModel) Logits(g *nn.Graph, b Batch) *nn.Tensor { return m.Forward(g, b.IDs, b.N, b.Seq) }

func (m *lmModel) Clone() Model {
	c := newLMModel(m.Cfg, nn.NewRNG(0, "clone"))
	mustLoad(c, m)
	return c
}

func transformerLayers(cfg nn.TransformerConfig) []LayerShape {
	ratio := cfg.MLPRatio
	if ratio == 0 {
		ratio = 4
	}
	d, h := cfg.Dim, ratio*cfg.Dim
	var ls []LayerShape
	for i := range cfg.Blocks {
		p := fmt.Sprintf("blocks.%d.", i)
		ls = append(ls,
			LayerShape{Name: p + "attn.q", Out: d, In: d, Bias: true},
			LayerShape{Name: p + "attn.k", Out: d, In: d, Bias: true},
			LayerShape{Name: p + "attn.v", Out: d, In: d, Bias: true},
			LayerShape{Name: p + "attn.o", Out: d, In: d, Bias: true},
			LayerShape{Name: p + "mlp.up", Out: h, In: d, Bias: true},
			LayerShape{Name: p + "mlp.down", Out: d, In: h, Bias: true},
		)
	}
	return append(ls, LayerShape{Name: "head", Out: cfg.Vocab, In: d, Bias: false})
}

// transformerNorms lists nn.Transformer's norms for cfg, in its Norms
// order: per block ln1 and ln2, then ln_f.
func transformerNorms(cfg nn.TransformerConfig) []NormShape {
	rms := cfg.Norm == "rms"
	var ns []NormShape
	for i := range cfg.Blocks {
		p := fmt.Sprintf("blocks.%d.", i)
		ns = append(ns, NormShape{Name: p + "ln1", Dim: cfg.Dim, Bias: !rms}, NormShape{Name: p + "ln2", Dim: cfg.Dim, Bias: !rms})
	}
	return append(ns, NormShape{Name: "ln_f", Dim: cfg.Dim, Bias: !rms})
}

func mustLoad(dst, src Model) {
	sd := map[string]*nn.Tensor{}
	for k, t := range src.StateDict() {
		sd[k] = t
	}
	if err := dst.LoadStateDict(sd); err != nil {
		panic(fmt.Sprintf("tasks: clone: %v", err))
	}
}

// recipe is a pretraining schedule: AdamW on every tensor of the model,
// linear warmup then cosine decay, global-norm clipping at 1.
type recipe struct {
	Steps  int
	Batch  int
	LR     float64
	Warmup int
	WD     float32
}

// pretrain trains every tensor of m with r, drawing batches from data with
// the "pretrain-data" stream of seed. It is deterministic: the same model,
// recipe, data function and seed give the same bytes. The model's tensors
// are frozen again (no gradients) when it returns.
func pretrain(ctx context.Context, m Model, r recipe, seed uint64, data func(rng *nn.RNG, size int) Batch) error {
	var ps []nn.ParamRef
	for _, l := range m.Linears() {
		ps = append(ps, nn.ParamRef{Name: l.Weight.Name, T: l.Weight, LRMul: 1, Decay: true})
		if l.Bias != nil {
			ps = append(ps, nn.ParamRef{Name: l.Bias.Name, T: l.Bias, LRMul: 1})
		}
	}
	ps = append(ps, m.Params()...)
	nn.SetTrainable(ps, true)
	defer nn.SetTrainable(ps, false)
	opt := nn.NewAdamW()
	opt.WeightDecay = r.WD
	rng := nn.NewRNG(seed, "pretrain-data")
	g := nn.NewGraph()
	for step := range r.Steps {
		if step%16 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		b := data(rng, r.Batch)
		g.Reset()
		nn.ZeroGrads(ps)
		loss := g.CrossEntropy(m.Logits(g, b), b.Labels)
		if l := loss.Data[0]; math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
			return fmt.Errorf("tasks: pretraining diverged at step %d (loss %v)", step, l)
		}
		g.Backward(loss)
		nn.ClipGradNorm(ps, 1)
		opt.Step(ps, float32(nn.LRSchedule("cosine", r.LR, r.Warmup, r.Steps, step)))
	}
	return nil
}

// chunk splits n examples into evaluation batches of at most size.
func chunks(n, size int, mk func(lo, hi int) Batch) []Batch {
	var bs []Batch
	for lo := 0; lo < n; lo += size {
		bs = append(bs, mk(lo, min(n, lo+size)))
	}
	return bs
}
