package methods

import "peftbench/nn"

// BiasMerger is implemented by adapters whose function also changes the
// layer's bias: RoAd rotates the whole output W0·x + b and IA3 scales it
// (HF PEFT's merge folds the adapter into both the weight and the bias).
// MergedBias returns, in a new slice, the bias that together with Merged's
// weight gives the adapter's outputs; adapters that leave the bias alone
// need not implement it.
type BiasMerger interface {
	MergedBias(l *nn.Linear) []float32
}

// MergedBias returns l's bias after merging its adapter: the adapter's
// MergedBias when it implements BiasMerger, else a copy of l.Bias; nil for
// a layer without a bias.
func MergedBias(l *nn.Linear) []float32 {
	if l.Bias == nil {
		return nil
	}
	if m, ok := l.Adapter.(BiasMerger); ok {
		return m.MergedBias(l)
	}
	return append([]float32(nil), l.Bias.Data...)
}
