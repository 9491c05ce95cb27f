package lm

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"peftbench/methods"
	"peftbench/nn"
	"peftbench/safetensors"
)

// tuneAdapter attaches method (options opts) to the layers of m whose
// names end in one of suffixes (all attention and MLP linears when nil),
// trains it for a few AdamW steps on random batches, and returns the
// attachment and the layers to save.
func tuneAdapter(t *testing.T, m *Model, method string, opts map[string]any, suffixes []string) (methods.Attachment, []AdapterLayer) {
	t.Helper()
	var targets []*nn.Linear
	for _, l := range m.Linears() {
		if l == m.Head {
			continue
		}
		if suffixes == nil || slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(l.Name, "."+s) }) {
			targets = append(targets, l)
		}
	}
	att, err := methods.Attach(method, targets, opts, nn.NewRNG(3, "method"))
	if err != nil {
		t.Fatal(err)
	}
	params := att.Params()
	opt := nn.NewAdamW()
	rng := nn.NewRNG(4, "data")
	const batch, seq = 2, 10
	g := nn.NewGraph()
	for range 6 {
		ids := make([]int, batch*seq)
		for i := range ids {
			ids[i] = rng.Intn(m.Cfg.Vocab)
		}
		g.Reset()
		nn.ZeroGrads(params)
		g.Backward(m.Loss(g, ids, ids, batch, seq))
		nn.ClipGradNorm(params, 1)
		opt.Step(params, 0.02)
	}
	var layers []AdapterLayer
	for _, l := range att.Layers() {
		lo := l.Adapter.(*methods.LoRA)
		a, b, r := lo.PEFTFactors()
		layers = append(layers, AdapterLayer{Name: l.Name, R: r, A: a, B: b, Scale: float64(lo.Scale)})
	}
	return att, layers
}

// TestSaveAdapterMatchesPython is acceptance 3's first half: a LoRA-family
// adapter trained on a Model, saved with SaveAdapter, is read by
// testdata/peft_apply.py, an independent reader that checks the PEFT key
// names, shapes and config fields, merges the factors into the base
// weights with PEFT's formula and runs its own forward; its logits equal
// the Go tuned model's (adapters attached, not merged) to 1e-5 relative.
// OpenAdapter reads the folder back too. The cases cover every family,
// rsLoRA (scale α/√r written as α' = s·r), a residual method (PiSSA,
// saved at rank 2r as [A; A0], [B, −B0]), short target names (c_attn …)
// and full names where a short name would select more (attn.c_proj only).
//
// Measured: relative logit error 3.9e-7 (gpt2), 4.9e-7 (gpt2 rsLoRA),
// 5.7e-7 (neox), 9.3e-7 (llama PiSSA), 7.1e-7 (qwen2); the adapters move
// the logits by 0.57–0.97 relative.
//
// Planted bugs, each confirmed to fail this test (the check that caught
// it): lora_B written transposed [r, out] (OpenAdapter's shape check, every
// case); GPT-2 saved with fan_in_fan_out false (peft_apply.py's config
// check); lora_alpha written as the scale s instead of s·r (logits 0.53–0.69
// relative); the residual factors saved without the −B0·A0 half (PiSSA
// logits 0.92); short target names where they select more layers
// (peft_apply.py's selection check: c_proj selects mlp.c_proj too).
func TestSaveAdapterMatchesPython(t *testing.T) {
	for _, tc := range []struct {
		name, family, method string
		opts                 map[string]any
		suffixes             []string
	}{
		{"gpt2-lora", "gpt2", "lora", map[string]any{"rank": 4, "alpha": 8}, nil},
		{"gpt2-rslora-attn-c_proj", "gpt2", "rslora", map[string]any{"rank": 4, "alpha": 6}, []string{"attn.c_proj"}},
		{"neox-lora", "neox", "lora", map[string]any{"rank": 4, "alpha": 16}, nil},
		{"llama-pissa-qv", "llama", "pissa", map[string]any{"rank": 4, "alpha": 4}, []string{"q_proj", "v_proj"}},
		{"qwen2-lora", "qwen2", "lora", map[string]any{"rank": 2, "alpha": 5}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTiny(t, tc.family)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			const batch, seq = 2, 9
			rng := nn.NewRNG(5, "ids")
			ids := make([]int, batch*seq)
			for i := range ids {
				ids[i] = rng.Intn(m.Cfg.Vocab)
			}
			g := &nn.Graph{NoGrad: true}
			base := slices.Clone(m.Logits(g, ids, batch, seq).Data)
			_, layers := tuneAdapter(t, m, tc.method, tc.opts, tc.suffixes)
			g.Reset()
			tuned := slices.Clone(m.Logits(g, ids, batch, seq).Data)
			if d := relMax(tuned, base); d < 1e-3 {
				t.Fatalf("the adapter moves the logits by %.3g only: the comparison would not see it", d)
			}
			adir := filepath.Join(t.TempDir(), "adapter")
			if err := m.SaveAdapter(adir, layers); err != nil {
				t.Fatal(err)
			}
			ad, err := safetensors.OpenAdapter(adir)
			if err != nil {
				t.Fatal(err)
			}
			ad.Close()
			t.Logf("adapter_config.json targets %v, r %d, alpha %v, rank_pattern %v", ad.Config.TargetModules, ad.Config.R, ad.Config.LoRAAlpha, ad.Config.RankPattern)
			idsPath := filepath.Join(t.TempDir(), "ids.json")
			js, _ := json.Marshal(map[string]any{"batch": batch, "seq": seq, "ids": ids})
			if err := os.WriteFile(idsPath, js, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "logits.f32")
			runPython(t, "peft_apply.py", dir, adir, idsPath, out)
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, len(raw)/4)
			for i := range want {
				want[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			if len(want) != len(tuned) {
				t.Fatalf("%d logits from peft_apply.py, Go has %d", len(want), len(tuned))
			}
			rel := relMax(tuned, want)
			t.Logf("%s: tuned logits vs peft_apply.py: relative %.3g (the adapter moved them by %.3g)", tc.name, rel, relMax(tuned, base))
			if rel > 1e-5 {
				t.Errorf("the saved adapter applied by peft_apply.py gives logits %.3g relative from the Go tuned model's (want ≤ 1e-5)", rel)
			}
		})
	}
}

// TestSaveAdapterPatterns: layers of another rank or scale than most are
// written in rank_pattern / alpha_pattern under their full names, and
// OpenAdapter gives back each layer's rank and scale; a name that is not a
// linear layer of the model is refused. Catches patterns keyed by short
// name (which would also match the other layers) or a scale read back as
// the default's.
func TestSaveAdapterPatterns(t *testing.T) {
	m, err := Load(writeTiny(t, "llama"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string, r int, scale float64) AdapterLayer {
		for _, l := range m.Linears() {
			if l.Name == name {
				return AdapterLayer{Name: name, R: r, A: make([]float32, r*l.In), B: make([]float32, l.Out*r), Scale: scale}
			}
		}
		t.Fatalf("no layer %s", name)
		return AdapterLayer{}
	}
	layers := []AdapterLayer{
		mk("model.layers.0.self_attn.q_proj", 4, 2),
		mk("model.layers.1.self_attn.q_proj", 4, 2),
		mk("model.layers.0.self_attn.v_proj", 4, 2),
		mk("model.layers.1.self_attn.v_proj", 2, 1.5),
	}
	dir := filepath.Join(t.TempDir(), "a")
	if err := m.SaveAdapter(dir, layers); err != nil {
		t.Fatal(err)
	}
	ad, err := safetensors.OpenAdapter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	if c := ad.Config; c.R != 4 || c.LoRAAlpha != 8 || !slices.Equal(c.TargetModules, []string{"q_proj", "v_proj"}) {
		t.Errorf("config r %d, alpha %v, targets %v; want 4, 8, [q_proj v_proj]", c.R, c.LoRAAlpha, c.TargetModules)
	}
	for _, l := range layers {
		_, _, _, r, _, err := ad.Factors(l.Name)
		s, _ := ad.Scale(l.Name)
		if err != nil || r != l.R || math.Abs(s-l.Scale) > 1e-12 {
			t.Errorf("%s: read back rank %d scale %v (%v), want %d, %v", l.Name, r, s, err, l.R, l.Scale)
		}
	}
	bad := append(slices.Clone(layers), AdapterLayer{Name: "model.embed_tokens", R: 1, A: []float32{1}, B: []float32{1}, Scale: 1})
	if err := m.SaveAdapter(t.TempDir(), bad); err == nil || !strings.Contains(err.Error(), `"model.embed_tokens" is not a linear layer`) {
		t.Errorf("embedding as a layer: err = %v", err)
	}
}
