package nn

import "fmt"

// TransformerConfig sizes a decoder-only transformer.
type TransformerConfig struct {
	Vocab    int     // token vocabulary
	Dim      int     // model width
	Heads    int     // attention heads; must divide Dim
	Blocks   int     // transformer blocks
	Seq      int     // maximum sequence length (position table size)
	MLPRatio int     // MLP hidden width = MLPRatio·Dim (default 4)
	Norm     string  // "layer" (default) or "rms"
	Dropout  float32 // dropout after attention and MLP while training
}

// Transformer is a GPT-style pre-norm decoder: token and position
// embeddings, blocks of causal self-attention and a GELU MLP each with a
// residual connection, a final norm and an LM head (no bias).
//
// Linear names: blocks.{i}.attn.{q,k,v,o}, blocks.{i}.mlp.{up,down}, head.
// Other tensors: tok_emb.weight, pos_emb.weight, blocks.{i}.ln{1,2}.{weight,bias},
// ln_f.{weight,bias} (no .bias with Norm "rms").
type Transformer struct {
	Cfg    TransformerConfig
	TokEmb *Tensor // Vocab×Dim
	PosEmb *Tensor // Seq×Dim
	Blocks []*Block
	LnF    *Norm
	Head   *Linear
	// DropoutRNG turns dropout on while training; nil (evaluation) turns it off.
	DropoutRNG *RNG

	pos []int
}

// Block is one transformer block.
type Block struct {
	Ln1, Ln2           *Norm
	Q, K, V, O, Up, Dn *Linear
}

// Norm is a LayerNorm (Bias set) or RMSNorm (Bias nil) of one width.
type Norm struct {
	Name         string  // stable dotted name: "blocks.0.ln1", "ln_f"
	Weight, Bias *Tensor // γ and β (nil for RMSNorm); frozen while fine-tuning
	// Tuned, when set, is a trainable copy of the norm that Forward uses in
	// place of Weight and Bias (LN tuning); nil: the base norm. It is the
	// norms' adapter slot, as Linear.Adapter is the linears'.
	Tuned *Norm
	// Eps is the ε added to the variance; 0 means NormEps. Checkpoints set
	// their own (Qwen2.5 1e-6).
	Eps float64
}

func newNorm(name string, dim int, rms bool) *Norm {
	n := &Norm{Name: name, Weight: New(dim)}
	n.Weight.Name = name + ".weight"
	for i := range n.Weight.Data {
		n.Weight.Data[i] = 1
	}
	if !rms {
		n.Bias = New(dim)
		n.Bias.Name = name + ".bias"
	}
	return n
}

// Dim is the norm's width.
func (n *Norm) Dim() int { return n.Weight.Size() }

// Copy returns a norm of the same name with copies of Weight and Bias
// (LN tuning's trainable copy; frozen until the caller sets gradients).
func (n *Norm) Copy() *Norm {
	c := &Norm{Name: n.Name, Weight: n.Weight.Clone(), Eps: n.Eps}
	c.Weight.Grad = nil
	if n.Bias != nil {
		c.Bias = n.Bias.Clone()
		c.Bias.Grad = nil
	}
	return c
}

// Merge folds Tuned into the base norm (copies its γ and β into Weight and
// Bias) and clears it: HF PEFT's LN-tuning merge, which swaps the copy in.
func (n *Norm) Merge() {
	if n.Tuned == nil {
		return
	}
	copy(n.Weight.Data, n.Tuned.Weight.Data)
	if n.Bias != nil {
		copy(n.Bias.Data, n.Tuned.Bias.Data)
	}
	n.Tuned = nil
}

// Forward applies the norm to the rows of x, with Tuned's γ and β when set.
func (n *Norm) Forward(g *Graph, x *Tensor) *Tensor {
	if n.Tuned != nil {
		return n.Tuned.Forward(g, x)
	}
	eps := n.Eps
	if eps == 0 {
		eps = NormEps
	}
	if n.Bias == nil {
		return g.RMSNormEps(x, n.Weight, eps)
	}
	return g.LayerNormEps(x, n.Weight, n.Bias, eps)
}

func (n *Norm) params(ps []ParamRef) []ParamRef {
	ps = append(ps, ParamRef{Name: n.Weight.Name, T: n.Weight, LRMul: 1})
	if n.Bias != nil {
		ps = append(ps, ParamRef{Name: n.Bias.Name, T: n.Bias, LRMul: 1})
	}
	return ps
}

// NewTransformer returns a transformer initialised GPT-2 style from rng:
// embeddings and linear weights N(0, 0.02²), biases 0, norms 1 and 0.
func NewTransformer(cfg TransformerConfig, rng *RNG) *Transformer {
	if cfg.MLPRatio == 0 {
		cfg.MLPRatio = 4
	}
	if cfg.Norm == "" {
		cfg.Norm = "layer"
	}
	if cfg.Vocab <= 0 || cfg.Dim <= 0 || cfg.Heads <= 0 || cfg.Dim%cfg.Heads != 0 || cfg.Blocks < 0 || cfg.Seq <= 0 {
		panic(fmt.Sprintf("nn: NewTransformer: bad config %+v", cfg))
	}
	if cfg.Norm != "layer" && cfg.Norm != "rms" {
		panic(fmt.Sprintf("nn: NewTransformer: norm %q, want layer or rms", cfg.Norm))
	}
	rms := cfg.Norm == "rms"
	d, h := cfg.Dim, cfg.MLPRatio*cfg.Dim
	lin := func(name string, in, out int, bias bool) *Linear {
		l := &Linear{Name: name, In: in, Out: out, Weight: New(out, in)}
		l.Weight.Name = name + ".weight"
		rng.FillNormal(l.Weight, 0, 0.02)
		if bias {
			l.Bias = New(out)
			l.Bias.Name = name + ".bias"
		}
		return l
	}
	m := &Transformer{Cfg: cfg, TokEmb: New(cfg.Vocab, d), PosEmb: New(cfg.Seq, d)}
	m.TokEmb.Name, m.PosEmb.Name = "tok_emb.weight", "pos_emb.weight"
	rng.FillNormal(m.TokEmb, 0, 0.02)
	rng.FillNormal(m.PosEmb, 0, 0.02)
	for i := range cfg.Blocks {
		p := fmt.Sprintf("blocks.%d.", i)
		m.Blocks = append(m.Blocks, &Block{
			Ln1: newNorm(p+"ln1", d, rms),
			Q:   lin(p+"attn.q", d, d, true),
			K:   lin(p+"attn.k", d, d, true),
			V:   lin(p+"attn.v", d, d, true),
			O:   lin(p+"attn.o", d, d, true),
			Ln2: newNorm(p+"ln2", d, rms),
			Up:  lin(p+"mlp.up", d, h, true),
			Dn:  lin(p+"mlp.down", h, d, true),
		})
	}
	m.LnF = newNorm("ln_f", d, rms)
	m.Head = lin("head", d, cfg.Vocab, false)
	return m
}

// Forward returns the logits ((batch·seq)×Vocab) for ids, batch sequences
// of seq tokens laid out row after row. ids must stay unchanged until
// Backward has run.
func (m *Transformer) Forward(g *Graph, ids []int, batch, seq int) *Tensor {
	if len(ids) != batch*seq || seq > m.Cfg.Seq || seq <= 0 {
		panic(fmt.Sprintf("nn: Transformer: %d ids for batch %d × seq %d (max seq %d)", len(ids), batch, seq, m.Cfg.Seq))
	}
	if len(m.pos) != batch*seq {
		m.pos = make([]int, batch*seq)
	}
	for i := range m.pos {
		m.pos[i] = i % seq
	}
	x := g.Add(g.Embedding(m.TokEmb, ids), g.Embedding(m.PosEmb, m.pos))
	p := m.Cfg.Dropout
	for _, b := range m.Blocks {
		h := b.Ln1.Forward(g, x)
		a := g.CausalSelfAttention(b.Q.Forward(g, h), b.K.Forward(g, h), b.V.Forward(g, h), batch, seq, m.Cfg.Heads)
		x = g.Add(x, g.Dropout(b.O.Forward(g, a), p, m.DropoutRNG))
		h = b.Ln2.Forward(g, x)
		h = b.Dn.Forward(g, g.GELU(b.Up.Forward(g, h)))
		x = g.Add(x, g.Dropout(h, p, m.DropoutRNG))
	}
	return m.Head.Forward(g, m.LnF.Forward(g, x))
}

// Linears returns, per block, q, k, v, o, up, down, then head.
func (m *Transformer) Linears() []*Linear {
	var ls []*Linear
	for _, b := range m.Blocks {
		ls = append(ls, b.Q, b.K, b.V, b.O, b.Up, b.Dn)
	}
	return append(ls, m.Head)
}

// Norms returns, per block, ln1 and ln2, then ln_f.
func (m *Transformer) Norms() []*Norm {
	var ns []*Norm
	for _, b := range m.Blocks {
		ns = append(ns, b.Ln1, b.Ln2)
	}
	return append(ns, m.LnF)
}

// Params returns the embeddings and norms (embeddings with weight decay,
// norms without).
func (m *Transformer) Params() []ParamRef {
	ps := []ParamRef{
		{Name: m.TokEmb.Name, T: m.TokEmb, LRMul: 1, Decay: true},
		{Name: m.PosEmb.Name, T: m.PosEmb, LRMul: 1, Decay: true},
	}
	for _, b := range m.Blocks {
		ps = b.Ln1.params(ps)
		ps = b.Ln2.params(ps)
	}
	return m.LnF.params(ps)
}

// StateDict maps HF-style names to the base tensors.
func (m *Transformer) StateDict() map[string]*Tensor {
	sd := map[string]*Tensor{}
	for _, p := range m.Params() {
		sd[p.Name] = p.T
	}
	linearState(sd, m.Linears())
	return sd
}

// LoadStateDict copies sd into the model (see Model).
func (m *Transformer) LoadStateDict(sd map[string]*Tensor) error {
	return LoadState(m.StateDict(), sd)
}
