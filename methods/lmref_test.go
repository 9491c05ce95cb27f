package methods

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"peftbench/internal/targets"
	"peftbench/lm"
	"peftbench/lmfolder"
	"peftbench/nn"
	"peftbench/safetensors"
)

// lmFamilies are the LM families the conformance suite runs every method
// on, with the target patterns (the checkpoint's own module names, as a
// sweep's targets would spell them) that select each family's attention
// and MLP linears. The untied NeoX head (embed_out) is left out: HF PEFT's
// all-linear leaves it out too.
var lmFamilies = []struct {
	family  string
	targets []string
}{
	{"gpt2", []string{"c_attn", "c_proj", "c_fc"}},
	{"neox", []string{"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}},
	{"llama", []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}},
	{"qwen2", []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}},
}

// lmSpec is the tiny checkpoint of a family the suite uses: one layer,
// width 32, two query heads (one key/value head for Llama and Qwen2, so
// k_proj and v_proj are 16×32: grouped-query attention, non-square),
// vocabulary 300, F32 weights, biases and norm gains drawn at random.
func lmSpec(family string, seed uint64) (lmfolder.Spec, error) {
	s, err := lmfolder.Defaults(family)
	if err != nil {
		return s, err
	}
	s.Seed, s.DType = seed, safetensors.F32
	s.Layers, s.Dim, s.Heads, s.Vocab, s.Seq = 1, 32, 2, 300, 32
	s.KVHeads = 2
	if family == "llama" || family == "qwen2" {
		s.KVHeads = 1
	}
	s.FFN = 0 // the family's ratio of the new width
	if family == "llama" {
		s.FFN = 3 * s.Dim
	} else {
		s.FFN = 4 * s.Dim
	}
	return s, nil
}

// lmBases holds the loaded tiny checkpoints per seed; refModels clones
// them, so every caller gets fresh weights without re-reading the folder.
var lmBases struct {
	sync.Mutex
	dir    string
	models map[uint64][]*lm.Model
}

// TestMain removes the tiny checkpoints' folder after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if lmBases.dir != "" {
		os.RemoveAll(lmBases.dir)
	}
	os.Exit(code)
}

// lmBase returns the tiny checkpoints of seed, in lmFamilies' order,
// writing and loading them on first use.
func lmBase(seed uint64) []*lm.Model {
	lmBases.Lock()
	defer lmBases.Unlock()
	if ms, ok := lmBases.models[seed]; ok {
		return ms
	}
	if lmBases.dir == "" {
		d, err := os.MkdirTemp("", "peftbench-methods-lm-")
		if err != nil {
			panic(err)
		}
		lmBases.dir = d
		lmBases.models = map[uint64][]*lm.Model{}
	}
	var ms []*lm.Model
	for _, f := range lmFamilies {
		dir := filepath.Join(lmBases.dir, fmt.Sprintf("%s-%d", f.family, seed))
		s, err := lmSpec(f.family, seed)
		if err != nil {
			panic(err)
		}
		if _, _, err := lmfolder.Write(dir, s); err != nil {
			panic(err)
		}
		m, err := lm.Load(dir)
		if err != nil {
			panic(err)
		}
		ms = append(ms, m)
	}
	lmBases.models[seed] = ms
	return ms
}

// lmRefModels returns a fresh copy of each family's tiny checkpoint as a
// refModel: its targets the attention and MLP linears by checkpoint name,
// out the logits of a fixed 2×12 batch and loss lm.Model.Loss (HF's
// shifted causal-LM loss) on it.
func lmRefModels(seed uint64) []refModel {
	var rs []refModel
	for i, base := range lmBase(seed) {
		m := base.Clone()
		f := lmFamilies[i]
		var tl []*nn.Linear
		for _, l := range m.Linears() {
			for _, p := range f.targets {
				if ok, _ := targets.Match(p, l.Name); ok {
					tl = append(tl, l)
					break
				}
			}
		}
		const batch, seq = 2, 12
		data := nn.NewRNG(seed, "lm-data")
		ids := make([]int, batch*seq)
		for j := range ids {
			ids[j] = data.Intn(m.Cfg.Vocab)
		}
		out := func(g *nn.Graph) *nn.Tensor { return m.Logits(g, ids, batch, seq) }
		loss := func(g *nn.Graph) *nn.Tensor { return m.Loss(g, ids, ids, batch, seq) }
		r := refModel{name: "lm-" + f.family, model: m, targets: tl, out: out, loss: loss,
			// every decoder layer's norms, not the final one
			alt: map[string]map[string]any{"ln-tuning": {"target_modules": `.*\.\d+\..*`}}}
		if f.family == "llama" || f.family == "qwen2" {
			// k_proj and v_proj are 16×32 (one key/value head of 16).
			r.refuse = map[string]string{"fourierft/defaults": "n_frequency: 1000 exceeds out·in = 512 of layer model.layers.0.self_attn.k_proj (16×32)"}
		}
		rs = append(rs, r)
	}
	return rs
}
