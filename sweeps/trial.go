package sweeps

import (
	"math"
	"time"
)

// Trial is one fully resolved run of a sweep: a method at a rank on a task
// with a seed and every hyperparameter fixed. Its ID is a hash of everything
// that can change its result, so two trials with equal IDs give bit-identical
// metrics and a finished trial is never run twice.
type Trial struct {
	Sweep  string `json:"sweep"`
	ID     string `json:"trial_id"` // hex SHA-256 prefix of the resolved config
	Index  int    `json:"index"`    // position in the plan; stable for a given sweep file
	Method string `json:"method"`
	Rank   int    `json:"rank"` // 0 for methods without a rank axis (full)
	Task   string `json:"task"`
	Seed   int64  `json:"seed"`

	// MethodOptions are the method's resolved options (alpha, dropout, init,
	// lambda, …) with defaults filled in. Values are TOML scalars: int64,
	// float64, string, bool, or []any of them.
	MethodOptions map[string]any `json:"method_options"`
	// TaskOptions are the task's resolved options with defaults filled in.
	TaskOptions map[string]any `json:"task_options"`
	// TaskIdentity, when set, replaces TaskOptions in the trial's ID: the
	// options with each file path replaced by a digest of the file's
	// content (Catalog's TaskIdentifier), so that the ID follows the data
	// rather than where it lies. Absent for tasks without files.
	TaskIdentity map[string]any `json:"task_identity,omitempty"`
	// Train holds the optimiser-loop hyperparameters.
	Train TrainConfig `json:"train"`
	// MitigateIntruders, when set, is HF PEFT's intruder-dimension
	// mitigation applied to the trained model before it is evaluated
	// ([analysis] mitigate_intruders); nil for a plain trial. It is part of
	// the trial's identity (and absent from the hash when nil).
	MitigateIntruders *IntruderMitigation `json:"mitigate_intruders,omitempty"`
	// Phase is PhaseSearch or PhaseTest in a tune sweep ([protocol] kind =
	// "tune"), empty in a plain one; part of the identity only when set.
	Phase string `json:"phase,omitempty"`
}

// IntruderMitigation is HF PEFT's reduce_intruder_dimension with its
// arguments: after training, each targeted layer's merged weight W has its
// intruder directions (among the top TopK left singular vectors, max |cos|
// to the base's below Epsilon) scaled by Lambda, W' = W + (λ−1)·Σ σⱼuⱼvⱼᵀ
// (analysis.MitigateIntruders), and the trial's metrics and spectra are
// those of the mitigated model.
type IntruderMitigation struct {
	Lambda  float64 `json:"lambda"`            // mitigation_lambda, in [0, 1]; 1 changes nothing
	Epsilon float64 `json:"threshold_epsilon"` // threshold_epsilon; default 0.5
	TopK    int     `json:"top_k"`             // default 10
}

// TrainConfig holds the trainer hyperparameters of one trial.
type TrainConfig struct {
	Steps       int      `json:"steps"`
	Batch       int      `json:"batch"`
	LR          float64  `json:"lr"`
	Optimizer   string   `json:"optimizer"` // "adamw" or "sgd"
	Momentum    float64  `json:"momentum"`  // SGD momentum
	Beta1       float64  `json:"beta1"`
	Beta2       float64  `json:"beta2"`
	Eps         float64  `json:"eps"`
	WeightDecay float64  `json:"weight_decay"`
	Schedule    string   `json:"schedule"` // "constant", "cosine" or "linear"
	Warmup      int      `json:"warmup"`   // warmup steps
	GradClip    float64  `json:"grad_clip"`
	EvalEvery   int      `json:"eval_every"` // steps between evaluations; 0 = only at the end
	Targets     []string `json:"targets"`    // layer name patterns the method attaches to
	// Threads is the number of CPU threads the trial may use; set by the
	// runner from [resources], not part of the trial's identity.
	Threads int `json:"-"`
}

// Resources says how a sweep may use the machine.
type Resources struct {
	Workers         int           `json:"workers"`           // concurrent trials; 0 = one per core
	ThreadsPerTrial int           `json:"threads_per_trial"` // 0 = cores / workers
	GPUs            []string      `json:"gpus"`              // device ids; nil = none
	GPUsAuto        bool          `json:"gpus_auto"`         // discover with nvidia-smi
	GPUsPerTrial    int           `json:"gpus_per_trial"`
	Timeout         time.Duration `json:"timeout"` // per trial; 0 = DefaultTimeout (see TrialTimeout)
	Retries         int           `json:"retries"` // extra attempts for failed (not diverged) trials
}

// Executor names where trials run: "local" (default) or "slurm".
type Executor struct {
	Kind string `json:"kind"`
	// Slurm settings; zero for local.
	Partition   string        `json:"partition,omitempty"`
	TimeLimit   string        `json:"time_limit,omitempty"`
	CPUsPerTask int           `json:"cpus_per_task,omitempty"`
	MemPerTask  string        `json:"mem_per_task,omitempty"`
	GPUsPerTask int           `json:"gpus_per_task,omitempty"`
	Throttle    int           `json:"throttle,omitempty"` // array %N; 0 = none
	SbatchArgs  []string      `json:"sbatch_args,omitempty"`
	Setup       string        `json:"setup,omitempty"` // shell lines run before each task
	PollEvery   time.Duration `json:"poll_every,omitempty"`
}

// TrainerSpec names what trains a trial: the builtin engine (default) or an
// external command speaking the protocol of docs/trainer-protocol.md.
type TrainerSpec struct {
	Kind    string   `json:"kind"`              // "builtin" or "command"
	Command []string `json:"command,omitempty"` // part of the trial ID
	// Env is added to the command's environment. It is not part of the
	// trial ID: it says how a trial runs (paths, machine settings), not
	// what it computes.
	Env map[string]string `json:"env,omitempty"`
}

// Analysis configures what is computed after each trial.
type Analysis struct {
	Spectra  bool      `json:"spectra"`  // compute spectra and intruder dimensions
	Epsilons []float64 `json:"epsilons"` // intruder thresholds; default [0.5]
	TopK     int       `json:"top_k"`    // tuned singular vectors checked; default 10
	// MitigateIntruders lists the intruder mitigations of
	// [analysis] mitigate_intruders, one per lambda: each trial of the
	// sweep is run once plain and once with each of them.
	MitigateIntruders []IntruderMitigation `json:"mitigate_intruders,omitempty"`
}

// Plan is a loaded sweep expanded into trials, ready to run.
type Plan struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	File        string      `json:"file"`   // path the sweep was loaded from
	Source      string      `json:"source"` // the sweep file's bytes, frozen into the manifest
	SourceHash  string      `json:"source_hash"`
	Resources   Resources   `json:"resources"`
	Executor    Executor    `json:"executor"`
	Trainer     TrainerSpec `json:"trainer"`
	Analysis    Analysis    `json:"analysis"`
	// Search and EarlyStopping are [search] and [early_stopping]; nil
	// without them.
	Search        *Search        `json:"search,omitempty"`
	EarlyStopping *EarlyStopping `json:"early_stopping,omitempty"`
	// Protocol is the sweep's [protocol]; nil for a plain sweep. A tune
	// sweep's Trials are its search trials (see Protocol).
	Protocol *Protocol `json:"protocol,omitempty"`
	Trials   []Trial   `json:"trials"`
	Warnings []string  `json:"warnings,omitempty"`
}

// The default per-trial timeout is DefaultTimeoutBase plus
// DefaultTimeoutPerStep for every step the trial may train: its steps times
// its stages (option "stages" of continual tasks), plus its base model's
// pretraining steps (option "pretrain_steps"), which the first trial to need
// that base pays and the others wait for. It is generous on purpose: the
// slowest builtin trial of experiments/*.toml on 2 busy cores takes a small
// fraction of it (see doc.go); it exists so that no trial, and so no sweep,
// can run forever.
const (
	DefaultTimeoutBase    = 10 * time.Minute
	DefaultTimeoutPerStep = time.Second
)

// TrialTimeout is the time trial t may take, training and after-trial
// analysis together: [resources] timeout when the sweep sets one, else
// DefaultTimeout(t). The timeout is not part of the trial's identity.
func (r Resources) TrialTimeout(t Trial) time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultTimeout(t)
}

// DefaultTimeout is the timeout of a trial whose sweep sets none:
// DefaultTimeoutBase + DefaultTimeoutPerStep × (steps × stages +
// pretrain_steps), stages and pretrain_steps read from the trial's resolved
// task options (1 and 0 when the task has no such option).
func DefaultTimeout(t Trial) time.Duration {
	stages := max(intOption(t.TaskOptions, "stages"), 1)
	n := int64(max(t.Train.Steps, 0))*stages + max(intOption(t.TaskOptions, "pretrain_steps"), 0)
	if limit := int64(math.MaxInt64/2) / int64(DefaultTimeoutPerStep); n > limit || n < 0 { // centuries: no overflow
		n = limit
	}
	return DefaultTimeoutBase + time.Duration(n)*DefaultTimeoutPerStep
}

// intOption is an integer option of a resolved option map (int64 from TOML,
// or an integral float64 from JSON), 0 when absent.
func intOption(opts map[string]any, key string) int64 {
	switch v := opts[key].(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v)
		}
	}
	return 0
}
