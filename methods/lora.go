package methods

import (
	"fmt"

	"peftbench/nn"
)

// LoRA is low-rank adaptation (Hu et al. 2021): y = x·W0ᵀ + b + s·(x·Aᵀ)·Bᵀ,
// ΔW = s·B·A with A (r×In) Kaiming-uniform (a=√5), B (Out×r) zero and
// s = α/r, as in HF PEFT. W0 and b stay frozen.
type LoRA struct {
	A, B  *nn.Tensor
	Rank  int
	Alpha float32
	Scale float32
	// LRMulB multiplies B's learning rate (LoRA+ sets λ; 1 otherwise).
	LRMulB float32
}

// NewLoRA returns a LoRA adapter of the given rank and α for l, drawing A
// from rng. It does not attach itself: set l.Adapter.
func NewLoRA(l *nn.Linear, rank int, alpha float32, rng *nn.RNG) *LoRA {
	if rank <= 0 {
		panic(fmt.Sprintf("methods: lora: %s: rank %d, want > 0", l.Name, rank))
	}
	a := nn.Param(l.Name+".lora_A.weight", rank, l.In)
	rng.KaimingUniform(a, l.In)
	b := nn.Param(l.Name+".lora_B.weight", l.Out, rank)
	return &LoRA{A: a, B: b, Rank: rank, Alpha: alpha, Scale: alpha / float32(rank), LRMulB: 1}
}

// Forward computes x·W0ᵀ + b + s·(x·Aᵀ)·Bᵀ without forming ΔW.
func (m *LoRA) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor {
	y := l.Base(g, x)
	u := g.MatMul(x, m.A, false, true)
	d := g.MatMul(u, m.B, false, true)
	return g.Add(y, g.Scale(d, m.Scale))
}

// Params returns A and B (no weight decay multiplier changes; decay on).
func (m *LoRA) Params() []nn.ParamRef {
	lb := m.LRMulB
	if lb == 0 {
		lb = 1
	}
	return []nn.ParamRef{
		{Name: m.A.Name, T: m.A, LRMul: 1, Decay: true},
		{Name: m.B.Name, T: m.B, LRMul: lb, Decay: true},
	}
}

// Merged returns W0 + s·B·A.
func (m *LoRA) Merged(l *nn.Linear) []float32 {
	w := append([]float32(nil), l.Weight.Data...)
	for i := range l.Out {
		brow := m.B.Data[i*m.Rank : (i+1)*m.Rank]
		wrow := w[i*l.In : (i+1)*l.In]
		for p, bv := range brow {
			if bv == 0 {
				continue
			}
			s := m.Scale * bv
			for j, av := range m.A.Data[p*l.In : (p+1)*l.In] {
				wrow[j] += s * av
			}
		}
	}
	return w
}

// TrainableParams is r·(In+Out).
func (m *LoRA) TrainableParams(l *nn.Linear) int { return m.Rank * (l.In + l.Out) }
