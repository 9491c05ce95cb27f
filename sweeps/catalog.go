package sweeps

import "peftbench/internal/options"

// Catalog is what sweeps knows about methods and tasks. The CLI wires it
// from the method and task registries, so this package imports neither.
type Catalog interface {
	// Methods and Tasks list the registered names.
	Methods() []string
	Tasks() []string
	// Executors lists the registered executor kinds ([executor] kind), so
	// that adding an executor needs no change here.
	Executors() []string
	// HasRank reports whether a method has a rank; those without one
	// (full fine-tuning) do not multiply across the rank axis.
	HasRank(method string) bool
	// MethodOptions and TaskOptions name the options a method or task
	// accepts. They route grid axes and [defaults] keys to the method or the
	// task, and suggest names for typos.
	MethodOptions(method string) []string
	TaskOptions(task string) []string
	// FromRank reports whether the method's option key takes its value
	// from the rank axis when no key sets it: the rank itself, or an option
	// whose default derives from it (AdaLoRA's init_rank). An error about
	// such an option points at the trial's rank.
	FromRank(method, key string) bool
	// ResolveMethod validates opts (keys and values) and returns them with
	// defaults filled in; rank > 0 is the trial's rank. opts hold the values
	// as the sweep file wrote them (alpha = "2r" included): their grammar is
	// the method's. Errors about one option should be *OptionError so
	// that the sweep error points at the key that set it.
	ResolveMethod(method string, rank int, opts map[string]any) (map[string]any, error)
	// ResolveTask is ResolveMethod for tasks.
	ResolveTask(task string, opts map[string]any) (map[string]any, error)
	// Layers lists the linear layers of the task's model, for target
	// patterns and the method's layer checks.
	Layers(task string, opts map[string]any) ([]Layer, error)
	// CheckMethodLayers checks a trial's rank (0 for methods without one)
	// and its method's resolved options (as ResolveMethod returned them)
	// against the layers the trial targets, by
	// the method's own rule (rank ≤ min(out, in) for most; any rank for
	// VeRA; 2·rank for LoRA-GA; the initial rank for AdaLoRA), so that a
	// sweep refuses at load time exactly what the trainer would refuse at
	// run time. Errors about one option should be *OptionError.
	CheckMethodLayers(method string, rank int, resolved map[string]any, layers []Layer) error
}

// TaskChecker is implemented by a Catalog that also checks a method against
// the task's whole model, beyond the linear layers the trial targets: a
// method that tunes norm layers (LN tuning) needs the model to have some.
// The loader calls CheckMethodTask, with the method's resolved options and
// the task's, once CheckMethodLayers accepts the trial, and reports its
// error as it reports CheckMethodLayers'; a Catalog without it skips the
// check. Errors about one option should be *OptionError.
type TaskChecker interface {
	CheckMethodTask(method string, resolved map[string]any, task string, taskOpts map[string]any) error
}

// TaskIdentifier is implemented by a Catalog whose tasks name files in
// their options (the lm task's checkpoint and data): TaskIdentity returns
// the resolved options as they enter the trial ID, each path replaced by
// a digest of the file's content, or nil when they enter as they are. The
// trial keeps its options (the paths, to run from) and records the
// identity in Trial.TaskIdentity. Errors should be *OptionError.
type TaskIdentifier interface {
	TaskIdentity(task string, resolved map[string]any) (map[string]any, error)
}

// Layer is a linear layer of a task's model: its dotted name and the shape
// (Out×In) of its weight (the one layer shape of internal/options).
type Layer = options.LayerShape
