package methods

import (
	"fmt"
	"strings"

	"peftbench/nn"
)

// TiedLoRA is LoRA with weight tying across layers (Renduchintala, Konuk
// and Kuchaiev 2023):
//
//	ΔW_ℓ = (α/r)·Λ_v^ℓ·B·Λ_u^ℓ·A,  y = x·W0ᵀ + b + (α/r)·(drop(x)·(Λ_u A)ᵀ)·(Λ_v B)ᵀ,
//
// where A (r×In) and B (Out×r) are ONE pair shared by every layer of the
// same projection type, and u_ℓ (r) and v_ℓ (Out) are per-layer scaling
// vectors (Λ = diag). The paper's recommended configuration, "vBuA", trains
// all four; train_a = false freezes A ("vBuĀ", A stays random) and
// train_uv = false freezes u = v = 1 (plain LoRA with tied A, B).
//
// Projection type: the paper ties "the LoRA weights of all layers" per
// projection (its Q, K, V, O, MLP matrices). Here two targeted layers share
// A and B when their dotted names agree after every all-digit component
// (the layer index) is replaced by "*" AND their shapes agree:
// "model.layers.3.self_attn.q_proj" and "model.layers.7.self_attn.q_proj"
// are one type ("model.layers.*.self_attn.q_proj"), the reference
// transformer's "blocks.0.q" and "blocks.1.q" are one type, and the MLP's
// fc1 and fc2 are two types of one layer each (Tied-LoRA is then LoRA with
// u, v). Including the path, not just the short name, keeps GPT-2's
// attn.c_proj and mlp.c_proj apart.
//
// Init (LoRA's, as the card reads the paper; not checked against the
// authors' NeMo code, whose weight-tying adapter differs): A
// Kaiming-uniform (fan-in In, drawn once per type), B = 0, u = v = 1, so
// ΔW = 0 at step 0; s = α/r as LoRA.
type TiedLoRA struct {
	A, B    *nn.Tensor // shared within the projection type: r×In, Out×r
	U, V    *nn.Tensor // this layer's scaling vectors: r, Out
	Rank    int
	Scale   float32
	Dropout float32

	rng *nn.RNG
}

// Forward computes the adapted output as one fused low-rank op on the
// scaled factors Λ_u·A (r×In) and Λ_v·B (Out×r), without forming ΔW.
func (t *TiedLoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	xd := g.Dropout(x, t.Dropout, t.rng)
	return g.LowRankLinear(x, l.Weight, l.Bias, xd, g.MulCol(t.A, t.U), g.MulCol(t.B, t.V), t.Scale)
}

// Params returns u and v when they train; the attachment lists the shared
// A and B once.
func (t *TiedLoRA) Params() []nn.ParamRef {
	if !t.U.RequiresGrad() {
		return nil
	}
	return []nn.ParamRef{
		{Name: t.U.Name, T: t.U, LRMul: 1, Decay: true},
		{Name: t.V.Name, T: t.V, LRMul: 1, Decay: true},
	}
}

// Merged returns W0 + s·Λ_v·B·Λ_u·A.
func (t *TiedLoRA) Merged(l *nn.Linear) []float32 {
	r := t.Rank
	vb := make([]float32, l.Out*r)
	for i := range l.Out {
		for p := range r {
			vb[i*r+p] = t.V.Data[i] * t.B.Data[i*r+p] * t.U.Data[p]
		}
	}
	w := append([]float32(nil), l.Weight.Data...)
	addLowRank(w, vb, t.A.Data, l.Out, r, l.In, float64(t.Scale))
	return w
}

// projectionType is the key that decides which layers share A and B: the
// dotted name with all-digit components replaced by "*", and the shape.
func projectionType(l LayerShape) string {
	parts := strings.Split(l.Name, ".")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			parts[i] = "*"
		}
	}
	return fmt.Sprintf("%s[%dx%d]", strings.Join(parts, "."), l.Out, l.In)
}

type tiedLoRAMethod struct{}

func (tiedLoRAMethod) Info() Info {
	return Info{
		Name: "tied-lora", Family: "lora", HasRank: true,
		Paper: Paper{Title: "Tied-LoRA: Enhancing parameter efficiency of LoRA with Weight Tying",
			Authors: "Renduchintala, Konuk and Kuchaiev", Year: 2023, ArXiv: "2311.09578"},
		Summary: "ΔW_ℓ = (α/r)·Λ_v·B·Λ_u·A with A, B tied across the layers of a projection type and per-layer u, v",
		Options: []Option{
			intOpt("rank", 8, 1, "rank r of the tied A and B"),
			floatOpt("alpha", 8, fptr(0), nil, "scaling numerator α (s = α/r); a number or a multiple of the rank (\"2r\")"),
			boolOpt("train_a", true, "train the tied A (false: A frozen random, the paper's vBuĀ)"),
			boolOpt("train_uv", true, "train the per-layer u and v (false: u = v = 1 frozen, tied LoRA)"),
			{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
		},
		AltOptions:    map[string]any{"rank": 4, "alpha": 16, "train_a": false},
		ParamsFormula: "Σ over projection types (r·in if A trains + r·out) + Σ over layers (r + out if u, v train)",
	}
}

func (tiedLoRAMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	r := o.Int("rank")
	if r <= 0 {
		return nil, fmt.Errorf("methods: tied-lora: rank %d, want > 0", r)
	}
	trainA, trainUV := o.Bool("train_a"), o.Bool("train_uv")
	type pair struct{ a, b *nn.Tensor }
	tied := map[string]pair{}
	at := &layerAttachment{layers: layers}
	for _, l := range layers {
		key := projectionType(Shapes([]*nn.Linear{l})[0])
		ab, ok := tied[key]
		if !ok {
			ab = pair{nn.Param(key+".tied_lora_A", r, l.In), nn.Param(key+".tied_lora_B", l.Out, r)}
			rng.KaimingUniform(ab.a, l.In)
			if trainA {
				at.shared = append(at.shared, nn.ParamRef{Name: ab.a.Name, T: ab.a, LRMul: 1, Decay: true})
			} else {
				ab.a.SetRequiresGrad(false)
			}
			at.shared = append(at.shared, nn.ParamRef{Name: ab.b.Name, T: ab.b, LRMul: 1, Decay: true})
			tied[key] = ab
		}
		u, v := nn.Param(l.Name+".tied_lora_u", r), nn.Param(l.Name+".tied_lora_v", l.Out)
		for _, t := range []*nn.Tensor{u, v} {
			for i := range t.Data {
				t.Data[i] = 1
			}
		}
		if !trainUV {
			u.SetRequiresGrad(false)
			v.SetRequiresGrad(false)
		}
		at.adapters = append(at.adapters, &TiedLoRA{A: ab.a, B: ab.b, U: u, V: v, Rank: r,
			Scale: float32(o.Float("alpha") / float64(r)), Dropout: float32(o.Float("dropout"))})
	}
	for i, l := range layers {
		l.Adapter = at.adapters[i]
	}
	return tiedLoRAAttachment{at}, nil
}

func (tiedLoRAMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	r := int64(o.Int("rank"))
	seen := map[string]bool{}
	var n int64
	for _, l := range layers {
		if key := projectionType(l); !seen[key] {
			seen[key] = true
			if o.Bool("train_a") {
				n += r * int64(l.In)
			}
			n += r * int64(l.Out)
		}
		if o.Bool("train_uv") {
			n += r + int64(l.Out)
		}
	}
	return n
}

// tiedLoRAAttachment gives each adapter its own dropout stream.
type tiedLoRAAttachment struct{ *layerAttachment }

func (at tiedLoRAAttachment) SetTraining(rng *nn.RNG) {
	for _, a := range at.adapters {
		t := a.(*TiedLoRA)
		t.rng = childRNG(rng, t.U.Name)
	}
}

func init() { Register("tied-lora", tiedLoRAMethod{}) }
