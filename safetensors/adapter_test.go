package safetensors

import (
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The hand-computed example: A (r=2 × in=3), B (out=2 × r=2),
// B·A = [[1 2 3] [2 5 6]].
var (
	loraA = []float32{1, 2, 3, 0, 1, 0}
	loraB = []float32{1, 0, 2, 1}
	loraW = []float32{1, 1, 1, 1, 1, 1}
)

func mat(name string, rows, cols int, v []float32) Tensor {
	return Tensor{Name: name, Shape: []int{rows, cols}, Data: v}
}

// adapterDir writes an adapter folder with the config and tensors given.
func adapterDir(t *testing.T, config string, ts ...Tensor) string {
	t.Helper()
	dir := t.TempDir()
	writeS(t, filepath.Join(dir, AdapterConfigFile), config)
	if ts != nil {
		writeT(t, filepath.Join(dir, AdapterWeightsFile), ts...)
	}
	return dir
}

const qProj = "base_model.model.model.layers.0.self_attn.q_proj"

func TestAdapterMerge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config string
		keyA   string
		keyB   string
		scale  float64
		fanIn  bool
	}{
		{"lora", `{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj","v_proj"]}`, qProj + ".lora_A.weight", qProj + ".lora_B.weight", 2, false},
		{"rslora", `{"peft_type":"LORA","r":2,"lora_alpha":4,"use_rslora":true,"target_modules":["q_proj"]}`, qProj + ".lora_A.weight", qProj + ".lora_B.weight", 4 / math.Sqrt2, false},
		{"adapter name in key", `{"peft_type":"LORA","r":2,"lora_alpha":2,"target_modules":"model\\.layers\\.\\d+\\.self_attn\\.q_proj"}`, qProj + ".lora_A.default.weight", qProj + ".lora_B.default.weight", 1, false},
		{"no prefix, all-linear", `{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":"all-linear"}`, "model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.0.self_attn.q_proj.lora_B.weight", 2, false},
		{"alpha pattern", `{"peft_type":"LORA","r":2,"lora_alpha":4,"alpha_pattern":{"k_proj":100,"self_attn.q_proj":6},"target_modules":null}`, qProj + ".lora_A.weight", qProj + ".lora_B.weight", 3, false},
		{"rank pattern", `{"peft_type":"LORA","r":8,"lora_alpha":4,"rank_pattern":{"layers\\.0\\..*":2}}`, qProj + ".lora_A.weight", qProj + ".lora_B.weight", 2, false},
		{"fan_in_fan_out", `{"peft_type":"LORA","r":2,"lora_alpha":4,"fan_in_fan_out":true}`, qProj + ".lora_A.weight", qProj + ".lora_B.weight", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := adapterDir(t, tc.config, mat(tc.keyA, 2, 3, loraA), mat(tc.keyB, 2, 2, loraB),
				vec("base_model.model.score.weight", 1))
			a, err := OpenAdapter(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			layer := "model.layers.0.self_attn.q_proj"
			if got := a.Layers(); !reflect.DeepEqual(got, []string{layer}) {
				t.Fatalf("Layers = %q", got)
			}
			if got := a.Others(); !reflect.DeepEqual(got, []string{"base_model.model.score.weight"}) {
				t.Errorf("Others = %q", got)
			}
			if s, _ := a.Scale(layer); math.Abs(s-tc.scale) > 1e-12 {
				t.Errorf("Scale = %v, want %v", s, tc.scale)
			}
			s := float32(tc.scale)
			ba := []float32{1, 2, 3, 2, 5, 6}
			out, in, d, err := a.Delta(layer)
			if err != nil || out != 2 || in != 3 {
				t.Fatalf("Delta: %d×%d, %v", out, in, err)
			}
			for i := range ba {
				if want := s * ba[i]; math.Abs(float64(d[i]-want)) > 1e-6 {
					t.Errorf("Delta[%d] = %v, want %v", i, d[i], want)
				}
			}
			w := append([]float32(nil), loraW...)
			rows, cols := 2, 3
			if tc.fanIn {
				rows, cols = 3, 2
			}
			if err := a.MergeInto(layer, w, rows, cols); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				for j := range 3 {
					idx := i*3 + j
					if tc.fanIn {
						idx = j*2 + i
					}
					if want := 1 + s*ba[i*3+j]; math.Abs(float64(w[idx]-want)) > 1e-6 {
						t.Errorf("merged W[%d,%d] = %v, want %v", i, j, w[idx], want)
					}
				}
			}
			if err := a.MergeInto(layer, w, cols, rows); err == nil || !strings.Contains(err.Error(), "base weight") {
				t.Errorf("MergeInto with transposed dims: %v", err)
			}
		})
	}
}

func TestAdapterRejects(t *testing.T) {
	A := mat(qProj+".lora_A.weight", 2, 3, loraA)
	B := mat(qProj+".lora_B.weight", 2, 2, loraB)
	const lora = `{"peft_type":"LORA","r":2,"lora_alpha":4}`
	for _, tc := range []struct {
		name   string
		config string
		ts     []Tensor
		want   string
	}{
		{"other peft type", `{"peft_type":"IA3","r":2,"lora_alpha":4}`, []Tensor{A, B}, `peft_type: "IA3" is not supported (only LORA)`},
		{"missing peft type", `{"r":2,"lora_alpha":4}`, []Tensor{A, B}, "peft_type: missing field"},
		{"dora", `{"peft_type":"LORA","r":2,"lora_alpha":4,"use_dora":true}`, []Tensor{A, B}, "DoRA adapters are not supported"},
		{"zero rank", `{"peft_type":"LORA","r":0,"lora_alpha":4}`, []Tensor{A, B}, "r: want a positive integer"},
		{"no alpha", `{"peft_type":"LORA","r":2}`, []Tensor{A, B}, "lora_alpha: want a number"},
		{"bad config json", `{"peft_type":`, []Tensor{A, B}, AdapterConfigFile},
		{"bad target regex", `{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":"("}`, []Tensor{A, B}, "target_modules: error parsing regexp"},
		{"rank mismatch", `{"peft_type":"LORA","r":4,"lora_alpha":4}`, []Tensor{A, B}, "rank 2, but the config says 4"},
		{"not targeted", `{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["v_proj"]}`, []Tensor{A, B}, "not among the config's target_modules"},
		{"missing B", lora, []Tensor{A}, `has lora_A "` + qProj + `.lora_A.weight" and lora_B ""`},
		{"shape mismatch", lora, []Tensor{A, mat(qProj+".lora_B.weight", 1, 4, []float32{1, 2, 3, 4})}, "want (r×in) and (out×r)"},
		{"two A", lora, []Tensor{A, B, mat(qProj+".lora_A.default.weight", 2, 3, loraA)}, "two lora_A tensors"},
		{"magnitude vector", lora, []Tensor{A, B, vec(qProj+".lora_magnitude_vector", 1, 1)}, "unsupported LoRA tensor"},
		{"no lora tensors", lora, []Tensor{vec("x", 1)}, "no lora_A/lora_B tensors"},
		{"no weights file", lora, nil, AdapterWeightsFile + ": no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := OpenAdapter(adapterDir(t, tc.config, tc.ts...))
			if err == nil {
				a.Close()
				t.Fatal("OpenAdapter accepted it")
			}
			if !strings.HasPrefix(err.Error(), "safetensors: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	dir := adapterDir(t, lora)
	writeS(t, filepath.Join(dir, "adapter_model.bin"), "pickle")
	if _, err := OpenAdapter(dir); err == nil || !strings.Contains(err.Error(), "only adapter_model.bin") {
		t.Errorf("pickle-only folder: %v", err)
	}
}

func TestAdapterMatch(t *testing.T) {
	const cfg = `{"peft_type":"LORA","r":1,"lora_alpha":1}`
	one := []float32{1}
	dir := adapterDir(t, cfg,
		mat("base_model.model.model.h.0.attn.lora_A.weight", 1, 1, one), mat("base_model.model.model.h.0.attn.lora_B.weight", 1, 1, one),
		mat("base_model.model.h.1.mlp.lora_A.weight", 1, 1, one), mat("base_model.model.h.1.mlp.lora_B.weight", 1, 1, one))
	a, err := OpenAdapter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, tc := range []struct {
		name string
		base []string
		want map[string]string
		err  string
	}{
		{"exact", []string{"model.h.0.attn.weight", "h.1.mlp.weight"},
			map[string]string{"model.h.0.attn": "model.h.0.attn.weight", "h.1.mlp": "h.1.mlp.weight"}, ""},
		{"prefix bridged both ways", []string{"h.0.attn.weight", "model.h.1.mlp.weight", "h.0.attn.bias"},
			map[string]string{"model.h.0.attn": "h.0.attn.weight", "h.1.mlp": "model.h.1.mlp.weight"}, ""},
		{"missing", []string{"h.0.attn.weight"}, nil, `layer "h.1.mlp": no base weight`},
		{"ambiguous", []string{"h.0.attn.weight", "model.h.0.attn.weight", "h.1.mlp.weight"}, nil, `layer "model.h.0.attn": ambiguous`},
	} {
		got, err := a.Match(tc.base)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Match = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
