package lm

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"peftbench/internal/targets"
	"peftbench/nn"
	"peftbench/safetensors"
)

// tiny configs of each family, small enough for finite differences.
var tinyConfigs = map[string]string{
	"gpt2": `{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 11, "n_embd": 8,
		"n_layer": 2, "n_head": 2, "n_positions": 8}`,
	"neox": `{"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"], "vocab_size": 11, "hidden_size": 8,
		"num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16, "rotary_pct": 0.5,
		"max_position_embeddings": 8}`,
	"llama": `{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 11, "hidden_size": 8,
		"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 12,
		"rope_theta": 1000.0, "tie_word_embeddings": true}`,
	"qwen2": `{"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": 11, "hidden_size": 8,
		"num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 12}`,
}

// writeFolder writes a checkpoint folder with config cfg and random
// weights in the file's own layout; edit may change the tensors first.
func writeFolder(t *testing.T, cfg string, seed uint64, edit func([]safetensors.Tensor) []safetensors.Tensor) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(c)
	rng := nn.NewRNG(seed, "weights")
	var ts []safetensors.Tensor
	for _, e := range m.entries {
		shape := e.t.Shape
		if e.conv1d {
			shape = []int{shape[1], shape[0]}
		}
		x := nn.New(shape...)
		rng.FillNormal(x, 0, 0.4)
		if strings.Contains(e.name, "norm") || strings.Contains(e.name, "ln_") {
			for i := range x.Data {
				x.Data[i] = 1 + x.Data[i]/4
			}
		}
		ts = append(ts, safetensors.Tensor{Name: e.name, Shape: shape, Data: x.Data})
	}
	if edit != nil {
		ts = edit(ts)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, safetensors.ModelFile), ts, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lora is a LoRA-like adapter for the gradient test: y = x·W0ᵀ + b + s·(x·Aᵀ)·Bᵀ.
type lora struct{ a, b *nn.Tensor }

func (l *lora) Forward(g *nn.Graph, lin *nn.Linear, x *nn.Tensor) *nn.Tensor {
	return g.LowRankLinear(x, lin.Weight, lin.Bias, x, l.a, l.b, 0.5)
}
func (l *lora) Params() []nn.ParamRef {
	return []nn.ParamRef{{Name: "a", T: l.a, LRMul: 1}, {Name: "b", T: l.b, LRMul: 1}}
}
func (l *lora) Merged(lin *nn.Linear) []float32 { return nil }

// TestLossGradient checks Loss's gradient through the whole model by
// central finite differences, for every family: with respect to LoRA
// factors on every linear layer (the head included where untied, which
// takes the unchunked path) and to the token embedding (a tied head gets
// its gradient through the chunked loss's dW). Planted bugs it caught: a
// sign flip in RoPE's backward; the chunked loss's dH written to the
// chunk's row numbers instead of the active rows; its dW GEMM skipped (the
// tied head's embedding gradient).
func TestLossGradient(t *testing.T) {
	for fam, cfg := range tinyConfigs {
		t.Run(fam, func(t *testing.T) {
			m, err := Load(writeFolder(t, cfg, 3, nil))
			if err != nil {
				t.Fatal(err)
			}
			rng := nn.NewRNG(5, "lora")
			var check []*nn.Tensor
			for _, l := range m.Linears() {
				ad := &lora{a: nn.Param("a", 2, l.In), b: nn.Param("b", l.Out, 2)}
				rng.FillNormal(ad.a, 0, 0.5)
				rng.FillNormal(ad.b, 0, 0.5)
				l.Adapter = ad
				check = append(check, ad.a, ad.b)
			}
			m.Embed.SetRequiresGrad(true)
			check = append(check, m.Embed)
			batch, seq := 2, 5
			ids := []int{1, 4, 9, 2, 0, 3, 3, 10, 7, 5}
			labels := append([]int(nil), ids...)
			labels[2], labels[6] = IgnoreIndex, IgnoreIndex
			loss := func() float64 {
				g := &nn.Graph{NoGrad: true}
				return float64(m.Loss(g, ids, labels, batch, seq).Data[0])
			}
			g := nn.NewGraph()
			g.Backward(m.Loss(g, ids, labels, batch, seq))
			const eps, tol = 1e-2, 2e-2
			for k, x := range check {
				step := max(1, x.Size()/7)
				for i := 0; i < x.Size(); i += step {
					old := x.Data[i]
					x.Data[i] = old + eps
					lp := loss()
					x.Data[i] = old - eps
					lm := loss()
					x.Data[i] = old
					num, ana := (lp-lm)/(2*eps), float64(x.Grad[i])
					if math.Abs(num-ana) > 2e-3+tol*math.Max(math.Abs(num), math.Abs(ana)) {
						t.Errorf("tensor %d (%s) element %d: backward %.6g, finite difference %.6g", k, x.Name, i, ana, num)
					}
				}
			}
		})
	}
}

// TestSaveRoundTrip saves each family and loads it back: same config
// bytes, same logits bit for bit, GPT-2's Conv1D weights back in [in, out]
// under the source's key prefix. A Save that forgot the transpose fails
// the shape check on reload; Clone is checked the same way.
func TestSaveRoundTrip(t *testing.T) {
	for fam, cfg := range tinyConfigs {
		t.Run(fam, func(t *testing.T) {
			src := writeFolder(t, cfg, 7, nil)
			m, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			if err := m.Save(out); err != nil {
				t.Fatal(err)
			}
			m2, err := Load(out)
			if err != nil {
				t.Fatal(err)
			}
			ids := []int{1, 2, 3, 4, 5, 6}
			g := &nn.Graph{NoGrad: true}
			a := m.Logits(g, ids, 2, 3).Data
			b := m2.Logits(g, ids, 2, 3).Data
			c := m.Clone().Logits(g, ids, 2, 3).Data
			for i := range a {
				if a[i] != b[i] || a[i] != c[i] {
					t.Fatalf("logit %d: %v loaded, %v saved and reloaded, %v cloned", i, a[i], b[i], c[i])
				}
			}
			st, err := safetensors.OpenModel(out)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if fam == "gpt2" {
				info, err := st.Info("transformer.h.0.mlp.c_fc.weight")
				if err != nil || info.Shape[0] != 8 || info.Shape[1] != 32 {
					t.Errorf("c_fc saved as %v (%v), want Conv1D [8 32]", info.Shape, err)
				}
			}
			raw, _ := os.ReadFile(filepath.Join(out, ConfigFile))
			if string(raw) != cfg {
				t.Errorf("config.json changed on save")
			}
		})
	}
}

// TestReadConfig checks both rotary spellings, defaults and explicit
// head_dim, and the refusals, each naming config.json and the key.
func TestReadConfig(t *testing.T) {
	base := map[string]any{}
	json.Unmarshal([]byte(tinyConfigs["llama"]), &base)
	with := func(kv ...any) string {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	ok := []struct {
		name, cfg    string
		theta        float64
		rotary, hdim int
		kv           int
		tied         bool
	}{
		{"old spelling", with("rope_theta", 5e5), 5e5, 2, 2, 2, true},
		{"rope_parameters", with("rope_theta", nil, "rope_parameters", map[string]any{"rope_type": "default", "rope_theta": 1e6}), 1e6, 2, 2, 2, true},
		{"partial in rope_parameters", with("head_dim", 4, "rope_parameters", map[string]any{"rope_theta": 1e4, "partial_rotary_factor": 0.5}), 1e4, 2, 4, 2, true},
		{"null rope_scaling, default kv heads", with("rope_scaling", nil, "num_key_value_heads", nil, "tie_word_embeddings", nil), 1000, 2, 2, 4, false},
		{"neox old spelling", tinyConfigs["neox"], 10000, 2, 4, 2, false},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, ConfigFile), []byte(c.cfg), 0o644)
			cfg, err := ReadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RopeTheta != c.theta || cfg.RotaryDims != c.rotary || cfg.HeadDim != c.hdim || cfg.KVHeads != c.kv || cfg.Tied != c.tied {
				t.Errorf("theta %g rotary %d head_dim %d kv %d tied %v, want %g %d %d %d %v",
					cfg.RopeTheta, cfg.RotaryDims, cfg.HeadDim, cfg.KVHeads, cfg.Tied, c.theta, c.rotary, c.hdim, c.kv, c.tied)
			}
		})
	}
	bad := []struct{ name, cfg, want string }{
		{"unknown model_type", with("model_type", "bert"), `model_type "bert": not gpt2, gpt_neox, llama or qwen2`},
		{"other architecture", with("architectures", []string{"LlamaForSequenceClassification"}), `architectures "LlamaForSequenceClassification"`},
		{"llama3 rope scaling without its parameters", with("rope_scaling", map[string]any{"rope_type": "llama3", "factor": 8.0}), `rope_scaling: rope type "llama3" needs a number low_freq_factor`},
		{"llama3 rope scaling, high ≤ low", with("rope_scaling", map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0, "original_max_position_embeddings": 8192}), `want positive, high > low`},
		{"linear rope scaling", with("rope_scaling", map[string]any{"rope_type": "linear", "factor": 2.0}), `rope_scaling: rope type "linear" is not implemented (only "default" and "llama3")`},
		{"yarn in rope_parameters", with("rope_parameters", map[string]any{"rope_type": "yarn", "rope_theta": 1e4}), `rope_parameters: rope type "yarn"`},
		{"missing size", with("hidden_size", nil), "hidden_size: missing"},
		{"heads not a multiple", with("num_key_value_heads", 3), "not a multiple of num_key_value_heads 3"},
		{"activation", with("hidden_act", "relu"), `activation "relu"`},
		{"qwen sliding window", strings.Replace(tinyConfigs["qwen2"], `"intermediate_size": 12`, `"intermediate_size": 12, "use_sliding_window": true`, 1), "use_sliding_window: true is not implemented"},
		{"not json", "{", "config.json: unexpected end of JSON input"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, ConfigFile), []byte(c.cfg), 0o644)
			_, err := ReadConfig(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Join(dir, ConfigFile)) {
				t.Errorf("error %v, want one naming %s and %q", err, filepath.Join(dir, ConfigFile), c.want)
			}
		})
	}
}

// TestLoadBadInput is the loader's share of acceptance 6: each broken
// folder is refused with an error naming the file at fault.
func TestLoadBadInput(t *testing.T) {
	llama := tinyConfigs["llama"]
	sharded := func(t *testing.T, drop bool) string {
		dir := writeFolder(t, llama, 1, nil)
		f, err := safetensors.OpenModel(dir)
		if err != nil {
			t.Fatal(err)
		}
		wmap := map[string]string{}
		var parts [2][]safetensors.Tensor
		for i, name := range f.Names() {
			data, shape, _ := f.Tensor(name)
			parts[i%2] = append(parts[i%2], safetensors.Tensor{Name: name, Shape: shape, Data: data})
			wmap[name] = []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i%2]
		}
		f.Close()
		os.Remove(filepath.Join(dir, safetensors.ModelFile))
		for i, p := range parts {
			if drop && i == 1 {
				continue
			}
			name := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i]
			if err := safetensors.WriteFile(filepath.Join(dir, name), p, nil); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": wmap})
		os.WriteFile(filepath.Join(dir, safetensors.IndexFile), b, 0o644)
		return dir
	}
	cases := []struct {
		name string
		dir  func(t *testing.T) string
		file string // the file the error must name, relative to the folder
		want string
	}{
		{"no config.json", func(t *testing.T) string {
			dir := writeFolder(t, llama, 1, nil)
			os.Remove(filepath.Join(dir, ConfigFile))
			return dir
		}, ConfigFile, "no config.json"},
		{"unknown model_type", func(t *testing.T) string {
			dir := writeFolder(t, llama, 1, nil)
			os.WriteFile(filepath.Join(dir, ConfigFile), []byte(strings.Replace(llama, `"llama"`, `"mamba"`, 1)), 0o644)
			return dir
		}, ConfigFile, `model_type "mamba"`},
		{"no weights", func(t *testing.T) string {
			dir := writeFolder(t, llama, 1, nil)
			os.Remove(filepath.Join(dir, safetensors.ModelFile))
			return dir
		}, "", "neither model.safetensors nor model.safetensors.index.json"},
		{"missing shard", func(t *testing.T) string { return sharded(t, true) }, "model-00002-of-00002.safetensors", "no such file"},
		{"wrong shape", func(t *testing.T) string {
			return writeFolder(t, llama, 1, func(ts []safetensors.Tensor) []safetensors.Tensor {
				for i := range ts {
					if ts[i].Name == "model.layers.1.self_attn.k_proj.weight" {
						ts[i].Shape = []int{8, 4} // GQA k is [kv·hd, D] = [4, 8]
					}
				}
				return ts
			})
		}, safetensors.ModelFile, `"model.layers.1.self_attn.k_proj.weight" has shape [8 4], want [4 8]`},
		{"missing tensor", func(t *testing.T) string {
			return writeFolder(t, llama, 1, func(ts []safetensors.Tensor) []safetensors.Tensor {
				return ts[1:]
			})
		}, safetensors.ModelFile, "missing tensor"},
		{"unknown tensor", func(t *testing.T) string {
			return writeFolder(t, llama, 1, func(ts []safetensors.Tensor) []safetensors.Tensor {
				return append(ts, safetensors.Tensor{Name: "model.layers.0.self_attn.q_norm.weight", Shape: []int{2}, Data: []float32{1, 1}})
			})
		}, safetensors.ModelFile, `"model.layers.0.self_attn.q_norm.weight" is not a parameter of llama`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir(t)
			_, err := Load(dir)
			want := filepath.Join(dir, c.file)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want one naming %s and %q", err, want, c.want)
			}
		})
	}
	// The sharded folder itself loads.
	if _, err := Load(sharded(t, false)); err != nil {
		t.Errorf("sharded folder: %v", err)
	}
}

// TestLayerShapes checks that LayerShapes lists Linears with the untied
// head (NeoX's embed_out, an untied lm_head) marked Output and nothing else, and that
// all-linear (internal/targets) then leaves the head out while naming it
// still selects it. Planted bugs caught: the head unmarked (all-linear
// would tune embed_out, which HF PEFT's all-linear leaves out), a tied
// head listed, a decoder linear marked.
func TestLayerShapes(t *testing.T) {
	for _, fam := range []string{"gpt2", "neox", "llama", "qwen2"} {
		m, err := Load(writeFolder(t, tinyConfigs[fam], 1, nil))
		if err != nil {
			t.Fatal(err)
		}
		shapes := m.LayerShapes()
		ls := m.Linears()
		var outputs, all []string
		for i, s := range shapes {
			if s.Name != ls[i].Name || s.Out != ls[i].Out || s.In != ls[i].In || s.Bias != (ls[i].Bias != nil) {
				t.Errorf("%s: shape %d = %+v, linear %s %d×%d", fam, i, s, ls[i].Name, ls[i].Out, ls[i].In)
			}
			if s.Output {
				outputs = append(outputs, s.Name)
			}
			all = append(all, s.Name)
		}
		want := []string(nil)
		if !m.Cfg.Tied { // neox's embed_out, the tiny qwen2's lm_head
			want = []string{m.Head.Name}
		}
		if !slices.Equal(outputs, want) {
			t.Errorf("%s: Output on %q, want %q", fam, outputs, want)
		}
		got, err := targets.Targeted([]string{targets.AllLinear}, shapes)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(all) - len(want); len(got) != n {
			t.Errorf("%s: all-linear selects %d of %d layers, want %d", fam, len(got), len(all), n)
		}
		for _, l := range got {
			if l.Output {
				t.Errorf("%s: all-linear selects the output layer %s", fam, l.Name)
			}
		}
		if fam == "neox" {
			if got, _ := targets.Targeted([]string{"embed_out"}, shapes); len(got) != 1 {
				t.Errorf("neox: naming embed_out selects %d layers, want 1", len(got))
			}
		}
	}
}
