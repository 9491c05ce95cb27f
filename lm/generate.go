package lm

import (
	"math"

	"peftbench/nn"
)

// Generate returns the greedy continuation of prompt: at most n tokens,
// stopping before eos (pass -1 for none) or when the positions run out.
// It keeps a key/value cache, so each new token costs one row through the
// layers instead of the whole prefix. The logits are those of Logits
// (adapters included) up to float rounding; g must have NoGrad set and
// is reset between tokens.
func (m *Model) Generate(g *nn.Graph, prompt []int, n, eos int) []int {
	if len(prompt) == 0 || n <= 0 {
		return nil
	}
	c := newKVCache(m)
	var out []int
	var logits []float32
	for _, id := range prompt {
		if c.len() >= m.Cfg.MaxPos {
			return nil
		}
		logits = c.step(g, id)
	}
	for len(out) < n {
		next := argmax(logits)
		if next == eos {
			break
		}
		out = append(out, next)
		if len(out) == n || c.len() >= m.Cfg.MaxPos {
			break
		}
		logits = c.step(g, next)
	}
	return out
}

func argmax(v []float32) int {
	a := 0
	for i, x := range v {
		if x > v[a] {
			a = i
		}
	}
	return a
}

// kvCache holds, per layer, the keys (after RoPE) and values of every
// position so far, KVHeads·HeadDim floats a position.
type kvCache struct {
	m    *Model
	k, v [][]float32
	pos  int
}

func newKVCache(m *Model) *kvCache {
	return &kvCache{m: m, k: make([][]float32, len(m.Layers)), v: make([][]float32, len(m.Layers))}
}

func (c *kvCache) len() int { return c.pos }

// step runs token id at the next position through the model, appending
// its keys and values, and returns the logits of that position (a copy).
func (c *kvCache) step(g *nn.Graph, id int) []float32 {
	m, cfg := c.m, c.m.Cfg
	g.Reset()
	p := c.pos
	pos := []int{p}
	x := g.Embedding(m.Embed, []int{id})
	if m.Pos != nil {
		x = g.Add(x, g.Embedding(m.Pos, pos))
	}
	scale := 1.0
	if cfg.ScaleAttn {
		scale = 1 / math.Sqrt(float64(cfg.HeadDim))
	}
	hd, rep := cfg.HeadDim, cfg.Heads/cfg.KVHeads
	kvd := cfg.KVHeads * hd
	for li, l := range m.Layers {
		h := l.Norm1.Forward(g, x)
		var q, k, v *nn.Tensor
		switch cfg.ModelType {
		case GPT2:
			qkv := l.QKV.Forward(g, h)
			q, k, v = g.SliceCols(qkv, 0, cfg.Dim), g.SliceCols(qkv, cfg.Dim, 2*cfg.Dim), g.SliceCols(qkv, 2*cfg.Dim, 3*cfg.Dim)
		case NeoX:
			qkv := l.QKV.Forward(g, h)
			q, k, v = g.GatherCols(qkv, m.split[0]), g.GatherCols(qkv, m.split[1]), g.GatherCols(qkv, m.split[2])
		default:
			q, k, v = l.Q.Forward(g, h), l.K.Forward(g, h), l.V.Forward(g, h)
		}
		if m.rope != nil && m.rope.Dims > 0 {
			q, k = g.RoPE(q, m.rope, pos), g.RoPE(k, m.rope, pos)
		}
		c.k[li] = append(c.k[li], k.Data...)
		c.v[li] = append(c.v[li], v.Data...)
		att := nn.New(1, cfg.Heads*hd)
		w := make([]float64, p+1)
		for hh := range cfg.Heads {
			qh := q.Data[hh*hd : (hh+1)*hd]
			kh := (hh / rep) * hd
			mx := math.Inf(-1)
			for t := 0; t <= p; t++ {
				kt := c.k[li][t*kvd+kh : t*kvd+kh+hd]
				var s float64
				for j := range hd {
					s += float64(qh[j]) * float64(kt[j])
				}
				w[t] = s * scale
				mx = max(mx, w[t])
			}
			var z float64
			for t := range w {
				w[t] = math.Exp(w[t] - mx)
				z += w[t]
			}
			o := att.Data[hh*hd : (hh+1)*hd]
			for j := range hd {
				var s float64
				for t := 0; t <= p; t++ {
					s += w[t] * float64(c.v[li][t*kvd+kh+j])
				}
				o[j] = float32(s / z)
			}
		}
		a := l.O.Forward(g, att)
		if cfg.ModelType == NeoX && cfg.ParallelResidual {
			x = g.Add(g.Add(m.mlp(g, l, l.Norm2.Forward(g, x)), a), x)
			continue
		}
		x = g.Add(x, a)
		x = g.Add(x, m.mlp(g, l, l.Norm2.Forward(g, x)))
	}
	c.pos++
	lg := m.head(g, m.Final.Forward(g, x))
	return append([]float32(nil), lg.Data...)
}
