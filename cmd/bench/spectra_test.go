package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/analysis"
	"peftbench/safetensors"
)

// peftFixture writes a base checkpoint (three matrices and a vector), a
// PEFT LoRA adapter folder on two of them (keys
// base_model.model.<layer>.lora_A.weight, scale α/r = 4), and the tuned
// checkpoint with the adapter merged explicitly in float64 here. The
// update is large against W0, so the tuned top directions are mostly new:
// intruders at ε = 0.5.
func peftFixture(t *testing.T, dtype safetensors.DType) (base, adapter, tuned string, merged map[string][2]*mat.Dense) {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 1))
	randn := func(n int, std float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * std)
		}
		return x
	}
	type layer struct {
		name     string
		out, in  int
		adapted  bool
		w0, a, b []float32
	}
	const r, alpha = 2, 8.0
	layers := []*layer{
		{name: "model.layers.0.self_attn.q_proj", out: 64, in: 32, adapted: true},
		{name: "model.layers.0.self_attn.v_proj", out: 64, in: 32, adapted: true},
		{name: "model.layers.0.mlp.down_proj", out: 32, in: 64},
	}
	var bt, tt, at []safetensors.Tensor
	merged = map[string][2]*mat.Dense{}
	for _, l := range layers {
		l.w0 = randn(l.out*l.in, 0.1)
		if dtype != safetensors.F32 { // what the file will hold
			l.w0 = roundTrip(t, l.w0, dtype)
		}
		w := slices.Clone(l.w0)
		if l.adapted {
			l.a, l.b = randn(r*l.in, 1), randn(l.out*r, 1)
			s := alpha / r
			for i := range l.out {
				for j := range l.in {
					var d float64
					for k := range r {
						d += float64(l.b[i*r+k]) * float64(l.a[k*l.in+j])
					}
					w[i*l.in+j] = float32(float64(l.w0[i*l.in+j]) + s*d)
				}
			}
			at = append(at,
				safetensors.Tensor{Name: "base_model.model." + l.name + ".lora_A.weight", Shape: []int{r, l.in}, Data: l.a},
				safetensors.Tensor{Name: "base_model.model." + l.name + ".lora_B.weight", Shape: []int{l.out, r}, Data: l.b})
			merged[l.name] = [2]*mat.Dense{dense(l.w0, l.out, l.in), dense(w, l.out, l.in)}
		}
		bt = append(bt, safetensors.Tensor{Name: l.name + ".weight", DType: dtype, Shape: []int{l.out, l.in}, Data: l.w0})
		tt = append(tt, safetensors.Tensor{Name: l.name + ".weight", Shape: []int{l.out, l.in}, Data: w})
	}
	norm := safetensors.Tensor{Name: "model.norm.weight", Shape: []int{32}, Data: randn(32, 1)}
	bt, tt = append(bt, norm), append(tt, norm)

	base = filepath.Join(dir, "base.safetensors")
	tuned = filepath.Join(dir, "tuned.safetensors")
	adapter = filepath.Join(dir, "adapter")
	if err := os.Mkdir(adapter, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"peft_type": "LORA", "r": 2, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "base_model_name_or_path": "test"}`
	for _, f := range []struct {
		path string
		ts   []safetensors.Tensor
	}{{base, bt}, {tuned, tt}, {filepath.Join(adapter, safetensors.AdapterWeightsFile), at}} {
		if err := safetensors.WriteFile(f.path, f.ts, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(adapter, safetensors.AdapterConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return base, adapter, tuned, merged
}

// roundTrip returns x as stored in dtype and read back.
func roundTrip(t *testing.T, x []float32, dtype safetensors.DType) []float32 {
	t.Helper()
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, []safetensors.Tensor{{Name: "x", DType: dtype, Shape: []int{len(x)}, Data: x}}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	y, _, err := f.Tensor("x")
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// TestSpectraAdapterMatchesMerged is acceptance 4 of issue 10: bench
// spectra on a PEFT adapter folder plus its base gives, per layer, the
// intruder counts of the analysis of the explicitly merged matrix, and the
// same as on a tuned checkpoint holding the merged weights.
func TestSpectraAdapterMatchesMerged(t *testing.T) {
	eps := []float64{0.3, 0.5, 0.7}
	for _, dtype := range []safetensors.DType{safetensors.F32, safetensors.BF16, safetensors.F16} {
		t.Run(string(dtype), func(t *testing.T) {
			base, adapter, tuned, merged := peftFixture(t, dtype)
			fromAdapter, err := spectra(spectraOptions{Base: base, Adapter: adapter, Eps: eps, TopK: 10})
			if err != nil {
				t.Fatal(err)
			}
			fromTuned, err := spectra(spectraOptions{Base: base, Tuned: tuned, Eps: eps, TopK: 10, Layers: []string{"q_proj", "v_proj"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(fromAdapter.Layers) != 2 || len(fromTuned.Layers) != 2 {
				t.Fatalf("layers: adapter %d, tuned %d, want 2 each", len(fromAdapter.Layers), len(fromTuned.Layers))
			}
			want := make([]int, len(eps))
			for i, l := range fromAdapter.Layers {
				m := merged[l.Layer]
				if m[0] == nil {
					t.Fatalf("layer %q is not one the adapter targets", l.Layer)
				}
				bs, err := analysis.DecomposeBase(m[0])
				if err != nil {
					t.Fatal(err)
				}
				rep, err := analysis.Intruders(bs, m[1], analysis.IntruderOptions{K: 10, Eps: eps})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(l.Intruders, rep.Counts) {
					t.Errorf("%s: adapter path counts %v, merged-matrix analysis %v", l.Layer, l.Intruders, rep.Counts)
				}
				if tl := fromTuned.Layers[i]; tl.Layer != l.Layer || !slices.Equal(tl.Intruders, l.Intruders) {
					t.Errorf("%s: tuned-checkpoint path %s counts %v, adapter path %v", l.Layer, tl.Layer, tl.Intruders, l.Intruders)
				}
				for e := range want {
					want[e] += rep.Counts[e]
				}
			}
			if !slices.Equal(fromAdapter.Total, want) {
				t.Errorf("total %v, want %v", fromAdapter.Total, want)
			}
			if fromAdapter.Total[1] == 0 {
				t.Errorf("no intruder at ε = 0.5 for a rank-2 update far larger than W0: counts %v", fromAdapter.Total)
			}
			t.Logf("%s: intruders per ε %v: %v", dtype, eps, fromAdapter.Total)
		})
	}
}

func TestSpectraCommand(t *testing.T) {
	base, adapter, tuned, _ := peftFixture(t, safetensors.F32)
	cases := []struct {
		name    string
		args    []string
		wantErr string
		want    []string // substrings of stdout
	}{
		{"table", []string{"--base", base, "--adapter", adapter}, "", []string{"q_proj", "v_proj", "INTRUDERS ε=0.5", "total (2 matrices, top 10)"}},
		{"all weights", []string{"--base", base, "--tuned", tuned, "--eps", "0.5,0.9"}, "", []string{"down_proj", "ε=0.9", "total (3 matrices"}},
		{"pattern", []string{"--base", base, "--tuned", tuned, "--layers", "re:down"}, "", []string{"down_proj", "total (1 matrices"}},
		{"no match", []string{"--base", base, "--tuned", tuned, "--layers", "nothing"}, "no weight matrix selected", nil},
		{"both inputs", []string{"--base", base, "--tuned", tuned, "--adapter", adapter}, "exactly one of --tuned and --adapter", nil},
		{"bad eps", []string{"--base", base, "--tuned", tuned, "--eps", "2"}, "--eps", nil},
		{"missing base", []string{"--base", filepath.Join(t.TempDir(), "none"), "--tuned", tuned}, "no such file", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := runSpectra(c.args, &out, &errb)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, errb.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}

	var out bytes.Buffer
	if err := runSpectra([]string{"--base", base, "--adapter", adapter, "--json", "--top-k", "4"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	var rep spectraReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.TopK != 4 || len(rep.Layers) != 2 || len(rep.Layers[0].TunedSigma) != 4 || len(rep.Layers[0].MaxCos) != 4 || rep.Layers[0].Rows != 64 {
		t.Errorf("json report = %+v", rep)
	}
}
