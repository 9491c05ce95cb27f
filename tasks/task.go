package tasks

import (
	"context"

	"peftbench/internal/options"
	"peftbench/lm"
	"peftbench/nn"
)

// Task is one fine-tuning task. Implementations register themselves with
// Register from an init function in their own file.
type Task interface {
	// Info describes the task: architecture, metrics, options, base quality.
	Info() Info
	// Layers returns the linear layers of the task's model for resolved
	// options o, computed from the architecture alone (no pretraining), so
	// that sweeps can check target patterns and ranks when they load.
	Layers(o Options) []LayerShape
	// New builds an instance for resolved options o: data sets and the
	// recipe of its base model. It does not pretrain.
	New(o Options) (Instance, error)
}

// Info is what a task declares about itself; `bench tasks` prints it.
type Info struct {
	Name         string `json:"name"`
	Description  string `json:"description"`
	Architecture string `json:"architecture"`
	// Metrics lists the metric names every trial of the task reports: the
	// generic ones (see Summary) and the task's extras.
	Metrics []string `json:"metrics"`
	Options []Option `json:"options"`
	// BaseAccuracy is the accuracy the base model reaches at least on the
	// retain set with default options (checked by the conformance test).
	BaseAccuracy float64 `json:"base_accuracy"`
	// Recipe is the version of the pretraining recipe; bumping it
	// invalidates cached base models.
	Recipe int `json:"recipe"`
}

// Option is one configurable option of a task (internal/options); Base
// marks options that change the base model (its architecture or
// pretraining): they, and only they, enter the cache key, so trials that
// differ in fine-tuning options share one base.
type Option = options.Option

// LayerShape is a linear layer of a task's model: its dotted name, the
// shape (Out×In) of its weight and whether it has a bias
// (internal/options; the same type as methods.LayerShape).
type LayerShape = options.LayerShape

// NormShape is a norm layer of a task's model: its dotted name, its width
// and whether it has a bias (internal/options; the same type as
// methods.NormShape).
type NormShape = options.NormShape

// normLister is implemented by tasks whose models have norm layers (the
// transformer tasks): Norms is Layers for them. A task without it has none.
type normLister interface {
	Norms(o Options) []NormShape
}

// Instance is a task with resolved options: its base model, its fine-tuning
// distribution and its evaluation sets. Evaluation sets are fixed for given
// options; they do not depend on the trial seed.
//
// Validation is for choosing hyperparameters and stopping early, so that
// selection never looks at Target (the test set). It is drawn from streams
// (or slices) of its own, so adding it left TrainBatch, Target and Retain
// as they were.
type Instance interface {
	// Base returns the pretrained base model, from c when cached, else
	// pretraining it (deterministic for the task, its base options and
	// base_seed) and storing it. Every call returns a new, independent model.
	Base(ctx context.Context, c *Cache) (Model, error)
	// TrainBatch draws a fine-tuning batch of size examples using rng.
	TrainBatch(rng *nn.RNG, size int) Batch
	// Target is the held-out evaluation set of the fine-tuning distribution.
	Target() []Batch
	// Retain is the held-out evaluation set of the pretraining distribution.
	Retain() []Batch
	// Validation is a held-out set of the fine-tuning (target)
	// distribution, a fraction (about a quarter) of Target's size, with no
	// example of Target or Retain. Where the fine-tuning data is a finite
	// pool that the training batches already sample in full (mnist-split,
	// mnist-permuted, modarith) it is a fixed part of that pool; modarith's
	// default train_frac = 1 trains and tests on every pair, so there it is
	// part of Target too (see the package documentation).
	Validation() []Batch
}

// Extraser is implemented by instances with metrics of their own
// (safety-guard's refusal_retention). The trainer merges the map into the
// trial's summary; tuned and base are evaluated with g (NoGrad).
type Extraser interface {
	Extras(g *nn.Graph, tuned, base Model) map[string]float64
}

// Staged is implemented by instances of continual tasks (option stages > 1):
// the fine-tuning data come in stages T1 → T2 → …, which the trainer runs in
// order; see the package documentation for what it must do between stages.
// TrainBatch, Target and Validation of a Staged instance are those of its
// first stage.
type Staged interface {
	Stages() []Stage
	// Merge reports the task's merge option: fold the adapter into the
	// base weights after each stage (true) or keep training one adapter.
	Merge() bool
}

// Stage is one stage of a continual task.
type Stage struct {
	Name       string
	TrainBatch func(rng *nn.RNG, size int) Batch
	Target     []Batch
	// Validation is the stage's held-out set of its fine-tuning
	// distribution, as Instance.Validation.
	Validation []Batch
}

// Model is a task's model: an nn.Model (linears, other parameters, state
// dict) with the task's input format.
type Model interface {
	nn.Model
	// Logits returns the logits of b: one row per entry of b.Labels.
	Logits(g *nn.Graph, b Batch) *nn.Tensor
	// Clone returns an independent copy of the base weights, without
	// adapters: each trial fine-tunes its own clone of the base.
	Clone() Model
}

// Batch is one batch of examples. MLP tasks set X (N×features); sequence
// tasks set IDs (N sequences of Seq tokens, row after row). Labels holds
// one class per logits row (N rows for MLPs, N·Seq for sequence models);
// −1 marks a row that counts in no loss or metric.
//
// Classes, when not nil, lists the logit columns that compete in the
// metrics of an evaluation batch (Evaluate, Forgetting): the argmax, the
// log-sum-exp and the distributions compared are taken over these columns
// alone, and every label must be one of them (task-incremental evaluation,
// mnist-split's protocol "task-il"). nil means every column. Training
// batches leave it nil: the fine-tuning loss is over every logit.
type Batch struct {
	X       *nn.Tensor
	IDs     []int
	N, Seq  int
	Labels  []int
	Classes []int
}

// Losser is implemented by models that compute the training loss of a
// batch without forming its full logits (the lm task's checkpoints: a
// chunked cross-entropy over a large vocabulary). Loss must equal
// g.CrossEntropy(Logits(g, b), b.Labels) up to rounding; the trainer uses
// it, when present, for every training and gradient-estimate step.
type Losser interface {
	Loss(g *nn.Graph, b Batch) *nn.Tensor
}

// AdapterSaver is implemented by task models that can save a LoRA adapter
// as a Hugging Face PEFT folder peft loads onto the same checkpoint (the
// lm task's checkpoints: lm.Model.SaveAdapter).
type AdapterSaver interface {
	SaveAdapter(dir string, layers []lm.AdapterLayer) error
}

// Identifier is implemented by tasks whose options name files (the lm
// task's checkpoint and data): Identity returns the resolved options as
// they enter a trial's ID, each path replaced by a digest of its content,
// so that moving the files keeps the ID and changing a byte changes it.
type Identifier interface {
	Identity(o Options) (map[string]any, error)
}

// Identity returns what of the named task's resolved options enters a
// trial's identity: Identifier's answer, or nil when the task has none
// (the options themselves).
func Identity(name string, opts map[string]any) (map[string]any, error) {
	t, o, err := resolved(name, opts)
	if err != nil {
		return nil, err
	}
	if id, ok := t.(Identifier); ok {
		return id.Identity(o)
	}
	return nil, nil
}
