package methods

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/nn"
)

// TestRandLoRAStructure checks RandLoRA's defining property on ΔW as the
// forward pass computes it, after training, for a layer whose smaller side
// is its input, one whose smaller side is its output and a square one:
// ΔW = (α/r)·Σ_i B_i·Λ_i·A·Γ_i (transposed when out < in) over
// n = ⌈min(out,in)/r⌉ bases, with A and the B_i the shared frozen bases
// (B_i[:, k] = column k·n + i of HF's flat B[:D, :n, :]), unchanged by
// training and never trainable; and, with λ and γ random and dense bases,
// ΔW reaches full rank min(out, in) although each basis has rank r.
func TestRandLoRAStructure(t *testing.T) {
	for _, c := range []struct {
		sizes []int
		opts  map[string]any
	}{
		{[]int{24, 48, 40, 6}, map[string]any{"rank": 8, "alpha": 160}},
		{[]int{24, 48, 40, 6}, map[string]any{"rank": 5, "alpha": 10, "sparse": true}},
		{[]int{32, 32, 20, 6}, map[string]any{"rank": 6, "alpha": 12, "very_sparse": true, "projection_prng_key": 9}},
		{[]int{32, 32, 20, 6}, map[string]any{"rank": 6, "alpha": 12, "projection_prng_key": 4}},
	} {
		name := fmt.Sprint(c.sizes, c.opts)
		o, err := ResolveOptions("randlora", 0, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		mlp, att := smallMLPTrained(t, c.sizes, "randlora", c.opts, 0, 0)
		ra := att.(*randloraAttachment)
		a0, b0 := slices.Clone(ra.A.Data), slices.Clone(ra.B.Data)
		var names []string
		for _, p := range att.Params() {
			names = append(names, p.Name)
		}
		if want := []string{"fc1.randlora_lambda", "fc1.randlora_gamma", "fc2.randlora_lambda", "fc2.randlora_gamma"}; !slices.Equal(names, want) {
			t.Errorf("%s: trainable %v, want %v", name, names, want)
		}
		mlp, att = smallMLPTrained(t, c.sizes, "randlora", c.opts, 5, 5e-3)
		ra = att.(*randloraAttachment)
		if !slices.Equal(ra.A.Data, a0) || !slices.Equal(ra.B.Data, b0) {
			t.Errorf("%s: the shared bases changed in training", name)
		}
		if ra.A.RequiresGrad() || ra.B.RequiresGrad() {
			t.Errorf("%s: the shared bases carry gradients", name)
		}
		r, s := o.Int("rank"), o.Float("alpha")/float64(o.Int("rank"))
		dS, nS := ra.A.Shape[1], ra.B.Shape[1]
		for _, l := range mlp.Layers[:2] {
			m := l.Adapter.(*RandLoRA)
			d, D := min(l.Out, l.In), max(l.Out, l.In)
			n := (d + r - 1) / r
			if maxAbs(m.Lambda.Data) == 0 {
				t.Fatalf("%s %s: λ did not train", name, l.Name)
			}
			want := func() []float64 {
				M := mat.NewDense(D, d, nil)
				for i := range n {
					Bi := mat.NewDense(D, r, nil)
					for k := range r {
						j := k*n + i // HF's pairing of the flat factors
						for p := range D {
							Bi.Set(p, k, float64(ra.B.Data[(p*nS+j/r)*r+j%r]))
						}
					}
					LA := mat.NewDense(r, d, nil) // Λ_i·A·Γ_i
					for k := range r {
						for q := range d {
							LA.Set(k, q, float64(m.Lambda.Data[k*n+i])*float64(ra.A.Data[k*dS+q])*float64(m.Gamma.Data[i*d+q]))
						}
					}
					var term mat.Dense
					term.Mul(Bi, LA)
					M.Add(M, &term)
				}
				M.Scale(s, M)
				out := make([]float64, l.Out*l.In)
				for o := range l.Out {
					for q := range l.In {
						if d == l.In {
							out[o*l.In+q] = M.At(o, q)
						} else {
							out[o*l.In+q] = M.At(q, o)
						}
					}
				}
				return out
			}
			got, exp := deltaFromForward(l), want()
			var worst, big float64
			for i := range got {
				worst = max(worst, math.Abs(got[i]-exp[i]))
				big = max(big, math.Abs(exp[i]))
			}
			if big == 0 || worst > 1e-4*big+1e-6 {
				t.Errorf("%s %s (%d×%d): ΔW differs from (α/r)·Σ B_i Λ_i A Γ_i by %.3g (max %.3g)", name, l.Name, l.Out, l.In, worst, big)
			}
			// Full rank with random λ and γ, for dense bases (a ternary A
			// may have an all-zero column, which zeroes that column of ΔW).
			if o.Bool("sparse") || o.Bool("very_sparse") {
				continue
			}
			rng := nn.NewRNG(17, "test")
			rng.FillNormal(m.Lambda, 0, 1)
			rng.FillNormal(m.Gamma, 0, 1)
			var f mat.SVD
			if !f.Factorize(mat.NewDense(l.Out, l.In, want()), mat.SVDNone) {
				t.Fatal("SVD failed")
			}
			sv := f.Values(nil)
			if sv[d-1] < 1e-6*sv[0] {
				t.Errorf("%s %s: ΔW has rank < min(out, in) = %d (σ_min/σ_max = %.3g) with %d bases of rank %d", name, l.Name, d, sv[d-1]/sv[0], n, r)
			}
		}
	}
}

// TestRandLoRABasesMatchTorch checks that the shared bases equal, bit for
// bit, those testdata/torch/randlora.py draws as HF PEFT's RandLoraModel
// does (torch.Generator(projection_prng_key), bf16 Kaiming draws and std
// normalisation; the sparse variants from torch.rand).
func TestRandLoRABasesMatchTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: PyTorch check skipped")
	}
	py := python(t)
	cases := []struct {
		layers []LayerShape
		opts   map[string]any
	}{
		{[]LayerShape{{Name: "a", Out: 48, In: 24}, {Name: "b", Out: 40, In: 48}}, map[string]any{"rank": 8}},
		{[]LayerShape{{Name: "a", Out: 96, In: 200}, {Name: "b", Out: 128, In: 64}}, map[string]any{"rank": 32, "projection_prng_key": 11}},
		{[]LayerShape{{Name: "a", Out: 64, In: 16}}, map[string]any{"rank": 5, "sparse": true}},
		{[]LayerShape{{Name: "a", Out: 30, In: 50}}, map[string]any{"rank": 4, "very_sparse": true, "projection_prng_key": 2}},
	}
	type query struct {
		O      Options          `json:"o"`
		Layers []map[string]int `json:"layers"`
	}
	var qs []query
	for _, c := range cases {
		o, err := ResolveOptions("randlora", 0, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		q := query{O: o}
		for _, l := range c.layers {
			q.Layers = append(q.Layers, map[string]int{"out": l.Out, "in": l.In})
		}
		qs = append(qs, q)
	}
	args, _ := json.Marshal(qs)
	script := `import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("rl", sys.argv[1]); rl = importlib.util.module_from_spec(spec); spec.loader.exec_module(rl)
res = []
for q in json.loads(sys.argv[2]):
    A, B = rl.bases(q["o"], q["layers"])
    res.append({"A": A.flatten().tolist(), "B": B.flatten().tolist(), "shapeB": list(B.shape)})
json.dump(res, sys.stdout)`
	out, err := exec.Command(py, "-c", script, filepath.Join("testdata", "torch", "randlora.py"), string(args)).Output()
	if err != nil {
		t.Fatal(err)
	}
	var tbs []struct {
		A, B   []float64
		ShapeB []int
	}
	if err := json.Unmarshal(out, &tbs); err != nil {
		t.Fatal(err)
	}
	for ci, c := range cases {
		o, tb := qs[ci].O, tbs[ci]
		a, b := randloraBases(c.layers, o.Int("rank"), uint64(o.Int("projection_prng_key")), o.Bool("sparse"), o.Bool("very_sparse"))
		if !slices.Equal(tb.ShapeB, b.Shape) {
			t.Fatalf("%v: B has shape %v, torch %v", c.opts, b.Shape, tb.ShapeB)
		}
		for _, p := range []struct {
			name string
			go_  []float32
			pt   []float64
		}{{"A", a.Data, tb.A}, {"B", b.Data, tb.B}} {
			diff := 0
			for i, v := range p.go_ {
				if float64(v) != p.pt[i] {
					if diff == 0 {
						t.Errorf("%v: %s[%d] = %v, torch %v", c.opts, p.name, i, v, p.pt[i])
					}
					diff++
				}
			}
			if diff > 0 {
				t.Errorf("%v: %s differs from torch in %d of %d entries", c.opts, p.name, diff, len(p.go_))
			}
		}
	}
}

func init() {
	addTorchCase(torchSpec{name: "randlora", method: "randlora",
		opts: map[string]any{"rank": 8, "alpha": 160}, lr: 2e-3, clip: 0.05})
	addTorchCase(torchSpec{name: "randlora-sparse", method: "randlora",
		opts: map[string]any{"rank": 4, "alpha": 80, "sparse": true, "projection_prng_key": 3}, lr: 2e-3, clip: 0.05})
	addTorchCase(torchSpec{name: "randlora-very-sparse", method: "randlora",
		opts: map[string]any{"rank": 16, "alpha": 320, "very_sparse": true, "projection_prng_key": 7}, lr: 2e-3, clip: 0.05})
}
