package methods

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/lm"
	"peftbench/lmfolder"
	"peftbench/nn"
	"peftbench/safetensors"
)

// TestGPT2Conv1DLoRA checks GPT-2's Conv1D layout against HF PEFT's
// fan_in_fan_out = True. lm holds c_attn's Conv1D weight W_conv ([in,
// out] in the file) as an nn.Linear [out, in]; a LoRA adapter on it has A
// [r, in] and B [out, r] as in PEFT, and PEFT merges into the Conv1D
// weight W_conv += (B·A)ᵀ · alpha/r. The test computes that sum from the
// file's own W_conv and the adapter's A and B (float64), and checks that
// (1) Merged(), transposed back, equals it, and (2) the merged weights
// saved with lm.Model.Save hold it under the checkpoint's name in [in,
// out] and reload to the adapted model's logits. Planted bugs caught: a
// merge that adds ΔW untransposed (c_attn is 96×32: the layouts differ),
// Save writing the merged Conv1D weight in the engine's [out, in], a scale
// other than alpha/r.
func TestGPT2Conv1DLoRA(t *testing.T) {
	s, err := lmSpec("gpt2", 5)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "gpt2")
	if _, _, err := lmfolder.Write(dir, s); err != nil {
		t.Fatal(err)
	}
	m, err := lm.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The file's Conv1D weight, [in, out].
	convName, conv, shape := readConv(t, filepath.Join(dir, safetensors.ModelFile), "h.0.attn.c_attn.weight")
	in, out := shape[0], shape[1]

	var lin *nn.Linear
	for _, l := range m.Linears() {
		if strings.HasSuffix(l.Name, "h.0.attn.c_attn") {
			lin = l
		}
	}
	if lin == nil || lin.Out != out || lin.In != in || out == in {
		t.Fatalf("c_attn: linear %v, file shape %v (want a non-square [in, out])", lin, shape)
	}
	const rank, alpha = 4, 8
	att, err := Attach("lora", []*nn.Linear{lin}, map[string]any{"rank": rank, "alpha": alpha}, nn.NewRNG(3, "method"))
	if err != nil {
		t.Fatal(err)
	}
	lora := lin.Adapter.(*LoRA)
	nn.NewRNG(4, "b").FillNormal(lora.B, 0, 0.5) // as if trained
	_ = att

	// HF PEFT, fan_in_fan_out = True: W_conv + transpose(B·A) · alpha/r.
	want := make([]float64, in*out)
	for i := range in {
		for j := range out {
			var d float64
			for k := range rank {
				d += float64(lora.B.Data[j*rank+k]) * float64(lora.A.Data[k*in+i])
			}
			want[i*out+j] = float64(conv[i*out+j]) + d*alpha/rank
		}
	}
	merged := lin.Merged() // [out, in]
	var worst float64
	for i := range in {
		for j := range out {
			worst = max(worst, math.Abs(float64(merged[j*in+i])-want[i*out+j]))
		}
	}
	if worst > 1e-6 {
		t.Errorf("(1) merged c_attn, transposed back, is %.3g from W_conv + (B·A)ᵀ·alpha/r", worst)
	}

	const batch, seq = 2, 8
	ids := make([]int, batch*seq)
	for i := range ids {
		ids[i] = (7*i + 3) % m.Cfg.Vocab
	}
	adapted := eval(func(g *nn.Graph) *nn.Tensor { return m.Logits(g, ids, batch, seq) })

	lin.Weight.Data, lin.Adapter = merged, nil
	saved := filepath.Join(t.TempDir(), "merged")
	if err := m.Save(saved); err != nil {
		t.Fatal(err)
	}
	_, got, gotShape := readConv(t, filepath.Join(saved, safetensors.ModelFile), convName)
	if gotShape[0] != in || gotShape[1] != out {
		t.Fatalf("(2) saved %s has shape %v, want [%d %d]", convName, gotShape, in, out)
	}
	worst = 0
	for i := range want {
		worst = max(worst, math.Abs(float64(got[i])-want[i]))
	}
	if worst > 1e-6 {
		t.Errorf("(2) saved %s is %.3g from W_conv + (B·A)ᵀ·alpha/r", convName, worst)
	}
	re, err := lm.Load(saved)
	if err != nil {
		t.Fatal(err)
	}
	reloaded := eval(func(g *nn.Graph) *nn.Tensor { return re.Logits(g, ids, batch, seq) })
	if d := relDiff(reloaded, adapted); d > 1e-5 {
		t.Errorf("(2) the saved merged model's logits are %.3g from the adapted model's", d)
	}
}

// readConv reads the tensor whose name ends in suffix from a safetensors
// file: its full name, data and shape.
func readConv(t *testing.T, path, suffix string) (string, []float32, []int) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range f.Names() {
		if strings.HasSuffix(n, suffix) {
			data, shape, err := f.Tensor(n)
			if err != nil {
				t.Fatal(err)
			}
			return n, data, shape
		}
	}
	t.Fatalf("%s: no tensor named *%s", path, suffix)
	return "", nil, nil
}
