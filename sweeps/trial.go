package sweeps

import "time"

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
	// Train holds the optimiser-loop hyperparameters.
	Train TrainConfig `json:"train"`
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
	Timeout         time.Duration `json:"timeout"` // per trial; 0 = none
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
	Trials      []Trial     `json:"trials"`
	Warnings    []string    `json:"warnings,omitempty"`
}
