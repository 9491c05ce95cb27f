package main

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"peftbench/analysis"
	"peftbench/lm"
	"peftbench/lmfolder"
	"peftbench/methods"
	"peftbench/nn"
	"peftbench/safetensors"
)

// TestSpectraLMAdapter is acceptance 3's second half: `bench spectra
// --adapter` on a LoRA adapter that lm.Model.SaveAdapter wrote for a tiny
// checkpoint (GPT-2: Conv1D, fan_in_fan_out; Llama) reports, per layer and
// in total, the intruder counts of the Go in-memory tuned model (each
// adapted layer's base weight against nn.Linear.Merged, through package
// analysis as a trial's own count is taken).
//
// Measured: gpt2 16 intruders over 8 layers, llama 13 over 14, at ε = 0.5,
// top 10, equal per layer.
//
// Planted bugs confirmed to fail it: spectra ignoring fan_in_fan_out (the
// Conv1D pair analysed in×out: the shape check on every non-square GPT-2
// layer, and counts 17 against 16, three layers off); SaveAdapter writing
// lora_alpha as s instead of s·r (the merged update r times smaller: 0
// intruders against 16 and 13).
func TestSpectraLMAdapter(t *testing.T) {
	for _, family := range []string{"gpt2", "llama"} {
		t.Run(family, func(t *testing.T) {
			spec, err := lmfolder.Defaults(family)
			if err != nil {
				t.Fatal(err)
			}
			spec.DType, spec.Seed, spec.InitStd, spec.Vocab, spec.Seq = safetensors.F32, 9, 0.1, 300, 64
			dir := filepath.Join(t.TempDir(), family)
			if _, _, err := lmfolder.Write(dir, spec); err != nil {
				t.Fatal(err)
			}
			m, err := lm.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			var targets []*nn.Linear
			for _, l := range m.Linears() {
				if l != m.Head {
					targets = append(targets, l)
				}
			}
			att, err := methods.Attach("lora", targets, map[string]any{"rank": 4, "alpha": 8}, nn.NewRNG(1, "method"))
			if err != nil {
				t.Fatal(err)
			}
			// A few large steps: an update big enough to have intruders.
			params, opt, g, rng := att.Params(), nn.NewAdamW(), nn.NewGraph(), nn.NewRNG(2, "data")
			for range 8 {
				ids := make([]int, 2*12)
				for i := range ids {
					ids[i] = rng.Intn(m.Cfg.Vocab)
				}
				g.Reset()
				nn.ZeroGrads(params)
				g.Backward(m.Loss(g, ids, ids, 2, 12))
				opt.Step(params, 0.02)
			}
			var layers []lm.AdapterLayer
			want := map[string]int{}
			total := 0
			opts := analysis.IntruderOptions{K: 10, Eps: []float64{0.5}}
			for _, l := range att.Layers() {
				lo := l.Adapter.(*methods.LoRA)
				a, b, r := lo.PEFTFactors()
				layers = append(layers, lm.AdapterLayer{Name: l.Name, R: r, A: a, B: b, Scale: float64(lo.Scale)})
				w0 := dense(l.Weight.Data, l.Out, l.In)
				bs, err := analysis.DecomposeBase(w0)
				if err != nil {
					t.Fatal(err)
				}
				ls, err := analysis.AnalyzeLayer(bs, w0, dense(l.Merged(), l.Out, l.In), opts)
				if err != nil {
					t.Fatal(err)
				}
				want[l.Name] = ls.Intruders.Counts[0]
				total += ls.Intruders.Counts[0]
			}
			if total == 0 {
				t.Fatal("the tuned model has no intruder at ε = 0.5: the comparison would be vacuous")
			}
			adir := filepath.Join(t.TempDir(), "adapter")
			if err := m.SaveAdapter(adir, layers); err != nil {
				t.Fatal(err)
			}
			rep, err := spectra(spectraOptions{Base: dir, Adapter: adir, Eps: opts.Eps, TopK: opts.K})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, l := range rep.Layers {
				got[l.Layer] = l.Intruders[0]
				if l.Rows != want0(targets, l.Layer).Out || l.Cols != want0(targets, l.Layer).In {
					t.Errorf("%s: analysed %d×%d, the layer is %d×%d (out×in)", l.Layer, l.Rows, l.Cols, want0(targets, l.Layer).Out, want0(targets, l.Layer).In)
				}
			}
			t.Logf("%s: %d adapted layers, intruders at ε=0.5: in memory %d, bench spectra --adapter %d", family, len(layers), total, rep.Total[0])
			for _, name := range slices.Sorted(maps.Keys(want)) {
				if got[name] != want[name] {
					t.Errorf("%s: bench spectra --adapter counts %d intruders, the in-memory tuned model %d", name, got[name], want[name])
				}
			}
			if len(got) != len(want) || rep.Total[0] != total {
				t.Errorf("bench spectra --adapter: %d layers, %d intruders; in memory %d layers, %d", len(got), rep.Total[0], len(want), total)
			}
		})
	}
}

func want0(ls []*nn.Linear, name string) *nn.Linear {
	for _, l := range ls {
		if l.Name == name {
			return l
		}
	}
	return &nn.Linear{}
}
