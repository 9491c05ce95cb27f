package methods

import "peftbench/nn"

// Full is full fine-tuning as a method: the layer's own weight and bias
// become trainable and the adapter adds nothing. Base keeps a copy of W0 so
// spectra can compare the tuned weight with it.
type Full struct {
	W, B *nn.Tensor // the layer's weight and bias (B may be nil)
	Base []float32  // W0 at creation
}

// NewFull makes l's weight and bias trainable and returns the adapter. It
// does not attach itself: set l.Adapter.
func NewFull(l *nn.Linear) *Full {
	l.Weight.SetRequiresGrad(true)
	if l.Bias != nil {
		l.Bias.SetRequiresGrad(true)
	}
	return &Full{W: l.Weight, B: l.Bias, Base: append([]float32(nil), l.Weight.Data...)}
}

// Forward is the plain layer with its trainable weight.
func (f *Full) Forward(g *nn.Graph, l *nn.Linear, x *nn.Tensor) *nn.Tensor { return l.Base(g, x) }

// Params returns the weight (with decay) and the bias (without).
func (f *Full) Params() []nn.ParamRef {
	ps := []nn.ParamRef{{Name: f.W.Name, T: f.W, LRMul: 1, Decay: true}}
	if f.B != nil {
		ps = append(ps, nn.ParamRef{Name: f.B.Name, T: f.B, LRMul: 1})
	}
	return ps
}

// Merged returns a copy of the current weight.
func (f *Full) Merged(l *nn.Linear) []float32 { return append([]float32(nil), l.Weight.Data...) }

// TrainableParams is Out·In (+ Out with a bias).
func (f *Full) TrainableParams(l *nn.Linear) int {
	n := l.Out * l.In
	if l.Bias != nil {
		n += l.Out
	}
	return n
}

// fullMethod registers full fine-tuning: every targeted layer's weight
// and bias train. (Embeddings and norms are the trainer's business: they
// are not linear layers.)
type fullMethod struct{}

func (fullMethod) Info() Info {
	return Info{
		Name: "full", Family: "full", HasRank: false,
		// A baseline, not a paper's method.
		Paper:         Paper{},
		Summary:       "train W and b of every targeted layer",
		Options:       []Option{},
		ParamsFormula: "Σ out·in (+ out with a bias)",
	}
}

func (fullMethod) Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	at := &fullAttachment{layers: layers}
	for _, l := range layers {
		f := NewFull(l)
		l.Adapter = f
		at.params = append(at.params, f.Params()...)
	}
	return at, nil
}

func (fullMethod) TrainableParams(layers []LayerShape, o Options) int64 {
	var n int64
	for _, l := range layers {
		n += int64(l.Out) * int64(l.In)
		if l.Bias {
			n += int64(l.Out)
		}
	}
	return n
}

// CheckLayers accepts any shapes.
func (fullMethod) CheckLayers(o Options, layers []LayerShape) error { return nil }

type fullAttachment struct {
	layers []*nn.Linear
	params []nn.ParamRef
}

func (at *fullAttachment) Layers() []*nn.Linear  { return at.layers }
func (at *fullAttachment) Params() []nn.ParamRef { return at.params }
func (at *fullAttachment) SetTraining(*nn.RNG)   {}

func init() { Register("full", fullMethod{}) }
