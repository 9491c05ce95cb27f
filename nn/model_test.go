package nn

import (
	"slices"
	"strings"
	"testing"
)

func TestLinearNames(t *testing.T) {
	m := NewMLP([]int{4, 5, 6, 3}, NewRNG(1, "init"))
	var got []string
	for _, l := range m.Linears() {
		got = append(got, l.Name)
	}
	if want := []string{"fc1", "fc2", "head"}; !slices.Equal(got, want) {
		t.Errorf("MLP linears %v, want %v", got, want)
	}
	tr := NewTransformer(TransformerConfig{Vocab: 5, Dim: 8, Heads: 2, Blocks: 2, Seq: 4}, NewRNG(1, "init"))
	got = got[:0]
	for _, l := range tr.Linears() {
		got = append(got, l.Name)
	}
	want := []string{
		"blocks.0.attn.q", "blocks.0.attn.k", "blocks.0.attn.v", "blocks.0.attn.o", "blocks.0.mlp.up", "blocks.0.mlp.down",
		"blocks.1.attn.q", "blocks.1.attn.k", "blocks.1.attn.v", "blocks.1.attn.o", "blocks.1.mlp.up", "blocks.1.mlp.down",
		"head",
	}
	if !slices.Equal(got, want) {
		t.Errorf("transformer linears %v, want %v", got, want)
	}
}

func TestStateDictRoundTrip(t *testing.T) {
	cfg := TransformerConfig{Vocab: 7, Dim: 8, Heads: 2, Blocks: 1, Seq: 4}
	a, b := NewTransformer(cfg, NewRNG(1, "init")), NewTransformer(cfg, NewRNG(2, "init"))
	sd := a.StateDict()
	for _, name := range []string{"tok_emb.weight", "pos_emb.weight", "blocks.0.ln1.weight", "blocks.0.attn.q.weight", "blocks.0.mlp.down.bias", "ln_f.bias", "head.weight"} {
		if sd[name] == nil {
			t.Errorf("state dict lacks %s", name)
		}
	}
	if err := b.LoadStateDict(sd); err != nil {
		t.Fatal(err)
	}
	ids := []int{1, 2, 3, 4}
	g := &Graph{NoGrad: true}
	ya, yb := a.Forward(g, ids, 1, 4), b.Forward(g, ids, 1, 4)
	if !slices.Equal(ya.Data, yb.Data) {
		t.Error("loaded model computes other logits")
	}

	bad := map[string]*Tensor{}
	for k, v := range sd {
		bad[k] = v
	}
	delete(bad, "head.weight")
	bad["head.bias"] = New(7)
	err := b.LoadStateDict(bad)
	if err == nil || !strings.Contains(err.Error(), "head.weight") || !strings.Contains(err.Error(), "head.bias") {
		t.Errorf("LoadStateDict with a missing and an extra tensor: %v", err)
	}
	bad = map[string]*Tensor{}
	for k, v := range sd {
		bad[k] = v
	}
	bad["ln_f.weight"] = New(9)
	if err := b.LoadStateDict(bad); err == nil || !strings.Contains(err.Error(), "ln_f.weight") {
		t.Errorf("LoadStateDict with a wrong shape: %v", err)
	}
}

// TestGraphReuse checks that a step after Reset, reusing the arena, gives
// the same loss and gradients as the first.
func TestGraphReuse(t *testing.T) {
	m := NewMLP([]int{6, 8, 3}, NewRNG(1, "init"))
	for _, l := range m.Layers {
		l.Weight.SetRequiresGrad(true)
	}
	x := New(4, 6)
	NewRNG(1, "data").FillNormal(x, 0, 1)
	labels := []int{0, 1, 2, 1}
	g := NewGraph()
	var losses []float32
	var grads [][]float32
	for range 2 {
		g.Reset()
		m.Layers[0].Weight.ZeroGrad()
		l := g.CrossEntropy(m.Forward(g, x), labels)
		g.Backward(l)
		losses = append(losses, l.Data[0])
		grads = append(grads, slices.Clone(m.Layers[0].Weight.Grad))
	}
	if losses[0] != losses[1] || !slices.Equal(grads[0], grads[1]) {
		t.Errorf("second pass differs: losses %v", losses)
	}
	ng := &Graph{NoGrad: true}
	if y := m.Forward(ng, x); y.Grad != nil || ng.Len() != 0 {
		t.Errorf("NoGrad graph recorded %d ops", ng.Len())
	}
}
