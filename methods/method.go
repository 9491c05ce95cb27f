package methods

import (
	"peftbench/internal/options"
	"peftbench/nn"
)

// Method is one PEFT method: how it reparametrises the frozen linear layers
// it targets, and what it declares about itself. Implementations register
// themselves with Register from an init function in their own file.
type Method interface {
	// Info describes the method: family, paper, options, formula.
	Info() Info
	// Attach adapts every layer in layers at once (methods such as VeRA
	// share tensors across layers and AdaLoRA keeps one global budget),
	// setting each layer's Adapter. o holds resolved options (see
	// ResolveOptions); rng draws the method's random initialisation.
	Attach(layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error)
	// TrainableParams is the method's trainable-parameter count, computed
	// from its formula (Info.ParamsFormula) and the layer shapes alone.
	TrainableParams(layers []LayerShape, o Options) int64
}

// Info is what a method declares about itself; `bench methods` prints it.
type Info struct {
	Name   string `json:"name"`
	Family string `json:"family"` // "full", "lora", "vector-scaling", "svd-init", "rank-adaptive", "gradient-init", …
	Paper  Paper  `json:"paper"`
	// Summary is one line: what the method changes about LoRA.
	Summary string `json:"summary"`
	// HasRank is false for methods without a rank axis (full fine-tuning).
	HasRank bool `json:"has_rank"`
	// RankOption is the option a sweep's rank axis sets: "rank" (the
	// default, when empty) for low-rank methods, another option where the
	// method's size axis is not a rank (OFT's block size, FourierFT's
	// n_frequency). RankMeans says what that axis is, for `bench methods`.
	RankOption string `json:"rank_option,omitempty"`
	RankMeans  string `json:"rank_means,omitempty"`
	// RankAboveMin allows a rank above min(out, in) of a layer (VeRA's
	// random projections are not a factorisation of ΔW).
	RankAboveMin bool     `json:"rank_above_min,omitempty"`
	Options      []Option `json:"options"`
	// ParamsFormula is the trainable-parameter count in words, summed over
	// the targeted layers (Out×In each).
	ParamsFormula string `json:"params_formula"`
	// InitDeviation bounds |f(x) − f₀(x)|/max(1, |f₀(x)|) at step 0 for
	// methods whose published initialisation is not an exact no-op
	// (LoRA-XS draws R ~ N(0, 1e-5²)); 0 means the adapted model starts
	// exactly at the base model.
	InitDeviation float64 `json:"init_deviation,omitempty"`
	// RandomInit, when set, says how the method's default initialisation
	// moves the model away from the base at step 0 (FourierFT and C3A keep
	// HF PEFT's non-zero default init), and IdentityOptions are the option
	// values under which it starts exactly at the base instead. The
	// conformance suite checks both.
	RandomInit      string         `json:"random_init,omitempty"`
	IdentityOptions map[string]any `json:"identity_options,omitempty"`
	// AltOptions is a second, non-default option set the conformance suite
	// runs the method at, besides its defaults (another init, a non-default
	// structural option), so that no code path is checked at defaults only.
	AltOptions map[string]any `json:"alt_options"`
	// LR is the learning rate the method's paper or HF PEFT's docs
	// recommend where it differs from LoRA's by an order of magnitude (C3A
	// ~1e-1, IA3 ~3e-3); 0 when LoRA's range applies. Informative: a
	// sweep's lr axis is what trains.
	LR float64 `json:"lr,omitempty"`
}

// RankOptionName returns the option a sweep's rank axis sets, or "" for a
// method without a rank axis.
func (in Info) RankOptionName() string {
	switch {
	case !in.HasRank:
		return ""
	case in.RankOption != "":
		return in.RankOption
	}
	return options.RankKey
}

// Paper is the publication a method implements.
type Paper struct {
	Title   string `json:"title"`
	Authors string `json:"authors"`
	Year    int    `json:"year"`
	ArXiv   string `json:"arxiv"` // "" for a paper not on arXiv; URL then says where
	URL     string `json:"url,omitempty"`
}

// Option is one configurable option of a method (internal/options).
type Option = options.Option

// LayerShape is a targeted linear layer: its dotted name, the shape
// (Out×In) of its weight and whether it has a bias (internal/options; the
// same type as tasks.LayerShape).
type LayerShape = options.LayerShape

// Shapes returns the shapes of layers.
func Shapes(layers []*nn.Linear) []LayerShape {
	s := make([]LayerShape, len(layers))
	for i, l := range layers {
		s[i] = LayerShape{Name: l.Name, Out: l.Out, In: l.In, Bias: l.Bias != nil}
	}
	return s
}

// NormShape is a norm layer (LayerNorm or RMSNorm): its dotted name, width
// and whether it has a bias (internal/options; the same type as
// tasks.NormShape).
type NormShape = options.NormShape

// NormShapes returns the shapes of norms.
func NormShapes(norms []*nn.Norm) []NormShape {
	s := make([]NormShape, len(norms))
	for i, n := range norms {
		s[i] = NormShape{Name: n.Name, Dim: n.Dim(), Bias: n.Bias != nil}
	}
	return s
}

// NormTuner is implemented by methods that adapt a model's norm layers
// instead of its linear layers (LN tuning). A trainer attaches such a
// method with AttachNorms to every norm layer of the model (the method
// picks among them by its own options), in place of Attach on the targeted
// linear layers, which it refuses; the Attachment it returns adapts no
// linear layer (Layers is empty) and sets each adapted norm's Tuned.
// TrainableNormParams is TrainableParams for norms, and CheckNorms is
// CheckLayers: a model with no norm layer to adapt is an error.
type NormTuner interface {
	AttachNorms(norms []*nn.Norm, o Options, rng *nn.RNG) (Attachment, error)
	TrainableNormParams(norms []NormShape, o Options) int64
	CheckNorms(o Options, norms []NormShape) error
}

// Attachment is a method attached to the targeted layers of one model.
type Attachment interface {
	// Params lists the trainable tensors, with per-tensor learning-rate
	// multipliers (LoRA+) and weight-decay flags, in a stable order.
	Params() []nn.ParamRef
	// Layers returns the adapted layers, in the order given to Attach.
	Layers() []*nn.Linear
	// SetTraining turns training-time randomness (LoRA dropout) on, drawing
	// from rng, or off with nil (evaluation). Attach leaves it off.
	SetTraining(rng *nn.RNG)
}

// The optional hooks below are how methods that need more than a
// reparametrisation take part in the optimiser loop. A trainer checks for
// each with a type assertion and calls it at the point documented in
// doc.go; no method is a special case in the trainer.

// BeforeTrainer is implemented by methods that initialise from data
// (LoRA-GA). The trainer calls BeforeTraining once, after Attach and before
// the first step and before it reads Params.
type BeforeTrainer interface {
	BeforeTraining(est GradEstimator) error
}

// GradEstimator returns, for each layer, the gradient of the training loss
// with respect to its frozen weight W0 (Out×In, row-major), averaged over
// the given number of training batches, with every adapter switched off.
// EstimateGrads builds one from a loss function.
type GradEstimator func(layers []*nn.Linear, batches int) ([][]float32, error)

// Regularizer is implemented by methods that add a term to the loss
// (AdaLoRA's orthogonality penalty). The trainer adds Regularizer(g) to the
// training loss of every step, in the same graph, before Backward.
type Regularizer interface {
	Regularizer(g *nn.Graph) *nn.Tensor
}

// StepStarter is implemented by methods that choose, before each step's
// forward pass, which of their tensors train in that step (LISA's sampled
// layers, as an HF TrainerCallback's on_step_begin does). The trainer calls
// StartStep before the forward pass of every step; a tensor the method
// freezes there (SetRequiresGrad(false), or its Grad set to nil) gets no
// gradient in that step's backward, counts in neither the gradient norm nor
// the clip, and is skipped by AdamW. The method must give such tensors
// their gradient buffers back by its AfterStep, so that between steps every
// listed parameter has one (Params is read once).
type StepStarter interface {
	StartStep(step, total int)
}

// BeforeStepper is implemented by methods that transform gradients
// (LoRA-FA's preconditioning). The trainer calls BeforeStep after Backward
// and after gradient clipping, immediately before the optimiser step, so
// the method sees the clipped gradient, as an HF PEFT optimiser does (the
// Trainer clips, then calls optimizer.step). step counts from 0; total is
// the number of steps of the run.
type BeforeStepper interface {
	BeforeStep(step, total int)
}

// AfterStepper is implemented by methods that act on the weights after an
// update (AdaLoRA's importance scores and budget masking). The trainer calls
// AfterStep after the optimiser step and before gradients are zeroed, so
// Grad still holds this step's gradient.
type AfterStepper interface {
	AfterStep(step, total int)
}

// InputCalibrator is implemented by methods that initialise from the
// inputs their layers see (EVA's incremental PCA, CorDA's covariance). The
// trainer calls CalibrateInputs once, after Attach and before
// BeforeTraining and Params.
type InputCalibrator interface {
	CalibrateInputs(est InputEstimator) error
}

// InputEstimator returns, for each layer, the inputs it receives over the
// given number of training batches with every adapter switched off: a
// row-major matrix of In columns, the rows of every batch stacked in batch
// order (N×In for an MLP batch of N, tokens×In for a sequence model).
// EstimateInputs builds one from a forward function.
type InputEstimator func(layers []*nn.Linear, batches int) ([][]float32, error)

// OptimizerMaker is implemented by methods that replace the optimiser's
// update for their parameters (GaLore's projected Adam, Flora's compressed
// moments, a Riemannian preconditioner inside Adam, Chain of LoRA's
// restarts). The trainer calls Optimizer once, after BeforeTraining and
// Params, with the optimiser the trial configured (for AdamW an *nn.AdamW
// whose β, ε, weight decay and Meter the method must honour; it may keep
// base and read them at each step), and steps the returned optimiser in
// its place, at the point where it would have stepped base. The returned
// optimiser's state size (nn.StateSizer) is the trial's
// optimizer_state_bytes, so it must implement nn.StateSizer and charge
// base.Meter as it allocates. A method that cannot work with base's kind
// returns an error naming it.
type OptimizerMaker interface {
	Optimizer(base nn.Optimizer) (nn.Optimizer, error)
}

// Variants is implemented by methods whose one trained adapter serves
// several models (DyLoRA: every rank b ≤ r). After training, the trainer
// evaluates the target and validation sets under each variant and reports
// the summaries "target_loss_<v>", "target_metric_<v>", "val_loss_<v>" and
// "val_metric_<v>" (v a short lower-case name such as "r2"); UseVariant("")
// restores the trained adapter before anything else reads the model.
type Variants interface {
	Variants() []string
	UseVariant(v string)
}
