package lm

import (
	"fmt"
	"math"

	"peftbench/nn"
)

// IgnoreIndex marks a label position that takes no part in the loss, as
// in transformers (ignore_index = −100).
const IgnoreIndex = -100

// Hidden returns the final-norm hidden states ((batch·seq)×Dim) for ids,
// batch sequences of seq tokens laid out row after row, positions 0…seq−1
// in each. ids must stay unchanged until Backward has run.
func (m *Model) Hidden(g *nn.Graph, ids []int, batch, seq int) *nn.Tensor {
	c := m.Cfg
	if batch <= 0 || seq <= 0 || len(ids) != batch*seq || seq > c.MaxPos {
		panic(fmt.Sprintf("lm: %d ids for batch %d × seq %d (max positions %d)", len(ids), batch, seq, c.MaxPos))
	}
	for i, id := range ids {
		if id < 0 || id >= c.Vocab {
			panic(fmt.Sprintf("lm: token id %d at %d out of range [0,%d)", id, i, c.Vocab))
		}
	}
	if len(m.pos) != batch*seq || m.posSeq != seq {
		m.pos, m.posSeq = make([]int, batch*seq), seq
		for i := range m.pos {
			m.pos[i] = i % seq
		}
	}
	x := g.Embedding(m.Embed, ids)
	if m.Pos != nil {
		x = g.Add(x, g.Embedding(m.Pos, m.pos))
	}
	scale := float32(1)
	if c.ScaleAttn {
		scale = float32(1 / math.Sqrt(float64(c.HeadDim)))
	}
	for _, l := range m.Layers {
		h := l.Norm1.Forward(g, x)
		var a *nn.Tensor
		if c.ModelType == GPT2 { // [q | k | v], read in place
			a = l.O.Forward(g, g.FusedCausalAttention(l.QKV.Forward(g, h), batch, seq, c.Heads, scale))
		} else {
			var q, k, v *nn.Tensor
			if c.ModelType == NeoX {
				qkv := l.QKV.Forward(g, h)
				q, k, v = g.GatherCols(qkv, m.split[0]), g.GatherCols(qkv, m.split[1]), g.GatherCols(qkv, m.split[2])
			} else {
				q, k, v = l.Q.Forward(g, h), l.K.Forward(g, h), l.V.Forward(g, h)
			}
			if m.rope != nil && m.rope.Dims > 0 {
				q, k = g.RoPE(q, m.rope, m.pos), g.RoPE(k, m.rope, m.pos)
			}
			a = l.O.Forward(g, g.GroupedCausalAttention(q, k, v, batch, seq, c.Heads, c.KVHeads, scale))
		}
		if c.ModelType == NeoX && c.ParallelResidual {
			// x + attn(ln1 x) + mlp(ln2 x), summed as transformers does.
			x = g.Add(g.Add(m.mlp(g, l, l.Norm2.Forward(g, x)), a), x)
			continue
		}
		x = g.Add(x, a)
		x = g.Add(x, m.mlp(g, l, l.Norm2.Forward(g, x)))
	}
	return m.Final.Forward(g, x)
}

// mlp is the layer's feed-forward network on h.
func (m *Model) mlp(g *nn.Graph, l *Layer, h *nn.Tensor) *nn.Tensor {
	if l.Gate != nil { // SwiGLU: down(silu(gate h) ⊙ up h)
		return l.Down.Forward(g, g.Mul(m.act(g, l.Gate.Forward(g, h)), l.Up.Forward(g, h)))
	}
	return l.Down.Forward(g, m.act(g, l.Up.Forward(g, h)))
}

func (m *Model) act(g *nn.Graph, x *nn.Tensor) *nn.Tensor {
	switch m.Cfg.Act {
	case "gelu":
		return g.GELUErf(x)
	case "silu":
		return g.SiLU(x)
	default: // gelu_new, gelu_pytorch_tanh
		return g.GELU(x)
	}
}

// head applies the LM head (through its adapter, if one is attached).
func (m *Model) head(g *nn.Graph, h *nn.Tensor) *nn.Tensor {
	if m.Cfg.Tied && m.Head.Adapter == nil {
		return g.Linear(h, m.Embed, nil)
	}
	return m.Head.Forward(g, h)
}

// Logits returns the full logits ((batch·seq)×Vocab), for evaluation on
// small inputs; training should use Loss, which never forms them.
func (m *Model) Logits(g *nn.Graph, ids []int, batch, seq int) *nn.Tensor {
	return m.head(g, m.Hidden(g, ids, batch, seq))
}

// Loss returns the causal-LM loss as transformers computes it: labels
// (batch·seq, aligned with ids; usually ids with IgnoreIndex where no loss
// is wanted) are shifted inside, so position t of a sequence predicts
// label t+1 and the last position predicts nothing; the mean is over every
// non-ignored target of the batch (not a mean of per-sequence means). The
// cross-entropy is computed in chunks (nn.LMCrossEntropy): no
// (batch·seq)×Vocab tensor is formed, unless an adapter sits on the head,
// whose output then has to be formed in full. labels must stay unchanged
// until Backward has run.
func (m *Model) Loss(g *nn.Graph, ids, labels []int, batch, seq int) *nn.Tensor {
	if len(labels) != batch*seq {
		panic(fmt.Sprintf("lm: Loss: %d labels for batch %d × seq %d", len(labels), batch, seq))
	}
	h := m.Hidden(g, ids, batch, seq)
	t := make([]int, len(labels))
	for i := range t {
		t[i] = IgnoreIndex
		if i%seq == seq-1 {
			continue
		}
		l := labels[i+1]
		if l != IgnoreIndex && (l < 0 || l >= m.Cfg.Vocab) {
			panic(fmt.Sprintf("lm: Loss: label %d at %d: not %d and not in [0,%d)", l, i+1, IgnoreIndex, m.Cfg.Vocab))
		}
		t[i] = l
	}
	if m.Head.Adapter != nil {
		return g.CrossEntropy(m.head(g, h), t)
	}
	return g.LMCrossEntropy(h, m.Head.Weight, t, 0)
}
