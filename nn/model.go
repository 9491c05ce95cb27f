package nn

import (
	"fmt"
	"sort"
)

// Model is what the trainer and the methods see of an MLP or a transformer.
type Model interface {
	// Linears returns every linear layer in a stable order.
	Linears() []*Linear
	// Norms returns every norm layer (LayerNorm, RMSNorm) in a stable
	// order; none for an MLP. Their base tensors are also in Params.
	Norms() []*Norm
	// Params returns the model's tensors outside its linear layers
	// (embeddings, norms), for pretraining. Linear weights and biases
	// belong to the linears and their adapters; fine-tuning, full
	// fine-tuning included, trains only the adapters' parameters.
	Params() []ParamRef
	// StateDict maps HF-style names ("blocks.0.attn.q.weight") to the
	// model's base tensors (shared, not copied).
	StateDict() map[string]*Tensor
	// LoadStateDict copies tensors into the model by name; every name must
	// be known and every tensor present, with matching shapes.
	LoadStateDict(map[string]*Tensor) error
}

func linearState(sd map[string]*Tensor, ls []*Linear) {
	for _, l := range ls {
		sd[l.Name+".weight"] = l.Weight
		if l.Bias != nil {
			sd[l.Name+".bias"] = l.Bias
		}
	}
}

// LoadState copies src into dst by name, strictly: every name of dst in
// src and no other, with matching shapes. It is the LoadStateDict of every
// nn.Model (dst = its StateDict), in this package and outside it (lm).
func LoadState(dst, src map[string]*Tensor) error {
	var missing, extra []string
	for name := range dst {
		if _, ok := src[name]; !ok {
			missing = append(missing, name)
		}
	}
	for name := range src {
		if _, ok := dst[name]; !ok {
			extra = append(extra, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		return fmt.Errorf("nn: load state: missing %v, unexpected %v", missing, extra)
	}
	for name, d := range dst {
		s := src[name]
		if !sameShape(d.Shape, s.Shape) || len(s.Data) != len(d.Data) {
			return fmt.Errorf("nn: load state: %s has shape %v, want %v", name, s.Shape, d.Shape)
		}
	}
	for name, d := range dst {
		copy(d.Data, src[name].Data)
	}
	return nil
}

// TotalParams is the model's parameter count as HF PEFT's
// print_trainable_parameters states it ("all params"): every tensor of the
// base model (StateDict: linears, embeddings, norms), frozen or not, plus
// each adapter's trainable tensors that are not base tensors (full
// fine-tuning trains base tensors, so they are not counted twice), and the
// trainable copies of tuned norms (LN tuning, Norm.Tuned). Frozen
// adapter buffers (VeRA's shared projections, a residual method's initial
// factors) are not parameters and are not counted.
func TotalParams(m Model) int {
	seen := map[*Tensor]bool{}
	n := 0
	for _, t := range m.StateDict() {
		if !seen[t] {
			seen[t] = true
			n += t.Size()
		}
	}
	count := func(t *Tensor) {
		if t != nil && !seen[t] {
			seen[t] = true
			n += t.Size()
		}
	}
	for _, l := range m.Linears() {
		if l.Adapter == nil {
			continue
		}
		for _, p := range l.Adapter.Params() {
			count(p.T)
		}
	}
	for _, nm := range m.Norms() {
		if nm.Tuned != nil {
			count(nm.Tuned.Weight)
			count(nm.Tuned.Bias)
		}
	}
	return n
}

// AllParams returns the trainable tensors of a model with its adapters
// attached: model.Params() that require grad, then each linear's adapter
// parameters, in the order of Linears.
func AllParams(m Model) []ParamRef {
	var ps []ParamRef
	for _, p := range m.Params() {
		if p.T.Grad != nil {
			ps = append(ps, p)
		}
	}
	for _, l := range m.Linears() {
		if l.Adapter != nil {
			ps = append(ps, l.Adapter.Params()...)
		}
	}
	return ps
}
