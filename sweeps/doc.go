// Package sweeps reads sweep files: TOML declarations of methods × ranks ×
// tasks × seeds (and any other hyperparameter as an axis), validated against
// a Catalog of methods and tasks and expanded into a Plan of fully resolved
// Trials, each identified by a hash of its config.
//
// # A sweep file
//
//	name = "rank-vs-forgetting"        # results go to results/<name>/; default: the file's base name;
//	                                   # letters, digits, '.', '_', '-', at most 100 bytes
//	description = "LoRA variants against full fine-tuning"
//	seeds = [0, 1, 2]                  # or a count: seeds = 3 means 0, 1, 2
//
//	[grid]                             # the cross product of these lists
//	method = ["lora", "rslora", "dora", "vera", "full"]
//	rank = [4, 8]
//	task = ["teacher-shift", "modarith"] # see `bench tasks`, `bench methods`
//	alpha = ["2r", 16]                 # any other key is an axis too
//
//	[defaults]                         # trainer hyperparameters (and option defaults)
//	steps = 500                        # optimiser steps, > 0
//	batch = 32
//	lr = 1e-3
//	optimizer = "adamw"                # "adamw" or "sgd"
//	momentum = 0.0                     # SGD momentum, [0, 1)
//	beta1 = 0.9
//	beta2 = 0.999
//	eps = 1e-8
//	weight_decay = 0.0
//	schedule = "cosine"                # "constant", "cosine" or "linear"
//	warmup = 25                        # steps, ≤ steps
//	grad_clip = 1.0                    # global-norm clip; 0 = off
//	eval_every = 100                   # 0 = evaluate at the end only
//	targets = ["all-linear"]           # layer patterns, see MatchTarget
//
//	[method.full]                      # per-method overrides: options and trainer keys
//	lr = 1e-4
//
//	[method.vera]
//	rank = [256]                       # replaces the grid's rank axis for this method
//	d_initial = 0.1                    # (VeRA's rank may exceed a layer's min(out, in))
//
//	[task.teacher-shift]               # per-task overrides: options and trainer keys
//	targets = ["fc1", "fc2"]           # the 5-class head is too narrow for rank 8
//	eval_size = 2048
//
//	[task.modarith]
//	targets = ["blocks.*.attn.*", "re:mlp\\.(up|down)$"]
//
//	[[exclude]]                        # drop grid points matching every key
//	method = "dora"
//	rank = [8]
//
//	[[include]]                        # add points; unnamed axes take the grid's values
//	method = "loraplus"
//	rank = 8
//	lr_ratio = [4, 16]
//
//	[resources]
//	workers = 4                        # concurrent trials; 0 = one per core
//	threads_per_trial = 1              # 0 = cores / workers
//	gpus = [0, 1]                      # device ids, or "auto" (nvidia-smi)
//	gpus_per_trial = 1                 # default 1 when gpus is set
//	timeout = "30m"                    # per trial, analysis included; Go duration syntax;
//	                                   # default 10m + 1s per step (see Timeouts)
//	retries = 2                        # for failed (not diverged) trials
//
//	[executor]
//	kind = "local"                     # or "slurm", with partition, time_limit,
//	                                   # cpus_per_task, mem_per_task, gpus_per_task,
//	                                   # throttle, sbatch_args, setup, poll_every
//
//	[trainer]
//	kind = "builtin"                   # or "command", with command = [...] and env = {...}
//
//	[analysis]
//	spectra = true                     # singular-value spectra, intruder dimensions
//	epsilons = [0.3, 0.5, 0.7]         # intruder thresholds, default [0.5]
//	top_k = 10                         # tuned singular vectors checked, default 10
//	mitigate_intruders = {lambda = 0.75} # also run each trial with HF PEFT's intruder
//	                                   # mitigation (see Intruder mitigation)
//
//	[search]                           # sampled points, crossed with the grid (see Search)
//	kind = "sobol"                     # or "random" (default)
//	n = 16                             # points
//	seed = 0                           # default 0
//	lr = {log_uniform = [1e-4, 1e-1]}  # any key a grid axis could take, one of:
//	dropout = {uniform = [0, 0.3]}     #   log_uniform, uniform = [low, high],
//	warmup = {int_uniform = [0, 50]}   #   int_uniform = [low, high] (both included),
//	init = {choice = ["kaiming", "gaussian"]} # choice = [values]
//
//	[early_stopping]                   # successive halving (see Early stopping)
//	kind = "asha"
//	eta = 3                            # keep the best ⌈n/eta⌉ at each rung; ≥ 2, default 3
//	min_steps = 100                    # rung 0, a multiple of eval_every; default eval_every
//	split = "val"                      # the step metric compared: default val accuracy,
//	metric = "accuracy"                # direction "max" ("min" for a metric named loss)
//	direction = "max"
//
// # Resolution
//
// A key other than method, task and rank — in [grid], [defaults] or an
// [[include]] — is a trainer key if it names a TrainConfig field; otherwise
// it goes to the trial's method if the method has an option of that name,
// else to the task's. A key that applies to no trial of the sweep is an
// error; one that applies to some methods only is ignored by the others, so
// an alpha axis does not multiply full fine-tuning. Values apply in
// increasing precedence: built-in defaults, [defaults], [task.X],
// [method.X], then the grid or include values of the trial.
//
// An option's value is passed on as written; its grammar is the method's
// or the task's (Catalog.ResolveMethod, ResolveTask): a method's float
// option may be a multiple of the rank, "2r" (2·rank), "0.5r", "2*r" or
// "r". Options are resolved before hashing, so alpha = "2r" at rank 8 and
// alpha = 16 at rank 8 are the same trial. A bad value is reported at the
// value that set it.
//
// Methods without a rank axis (Catalog.HasRank false: full fine-tuning,
// IA3, RoAd, LN tuning) do not multiply across the grid's rank axis; their
// trials have Rank 0. A rank axis that only such methods would get — the
// grid's when no grid method has a rank, an include's or a method table's
// for a rank-less method — is an error. For methods whose size axis is not
// a rank (OFT's block size, FourierFT's n_frequency) the rank axis sets
// that option (`bench methods` names it). Excludes apply
// to grid points only, before includes are added. Trials whose IDs are
// equal are kept once. A sweep may expand to at most 100,000 trials.
//
// Every target pattern must select a layer of the trial's task, and the
// method itself (Catalog.CheckMethodLayers) checks the trial's rank and
// options against the layers it targets — rank ≤ min(out, in) for most
// methods, 2·rank for LoRA-GA, any rank for VeRA — so that a sweep refuses
// at load time, at the value that set it, exactly what the trainer would
// refuse at run time. A method that tunes norm layers instead of linear
// ones (LN tuning) ignores the targets and is checked against the task's
// norm layers (Catalog implementing TaskChecker): it is refused on a task
// whose model has none, "ln-tuning: task teacher-shift has no norm
// layers", so it goes in an [[include]] with the transformer tasks rather
// than in a grid with MLP tasks.
//
// # Order and identity
//
// Trials are ordered by seed, method, task and rank, then the other axes by
// key name, each in file order; include trials follow in file order; a
// trial's intruder-mitigated twins follow it, in lambda order. A
// partially run sweep therefore covers every configuration with the first
// seeds first.
//
// A trial's ID is the first 16 hex digits of the SHA-256 of the canonical
// JSON of everything that can change its result: method, rank, task, seed,
// resolved method and task options, the trainer configuration (targets
// included), the intruder mitigation when there is one, and, for external
// trainers, the command. It excludes the sweep name, the trial's index,
// threads, GPUs, the executor, the rest of the analysis and
// an external trainer's env (paths and machine settings: how a trial runs,
// not what it computes), so renaming or reordering a sweep, or moving it to
// another machine, keeps its finished trials.
//
// # Intruder mitigation
//
// [analysis] mitigate_intruders applies HF PEFT's post-hoc
// reduce_intruder_dimension to trained models, so that one sweep compares
// intruders and forgetting with and without it:
//
//	mitigate_intruders = {lambda = 0.75}                 # HF PEFT's default
//	mitigate_intruders = {lambda = [0.5, 0.75], threshold_epsilon = 0.5, top_k = 10}
//
// Every trial of the sweep then runs once plain (its ID unchanged) and once
// per lambda, right after it, with Trial.MitigateIntruders set: after
// training, each targeted layer's merged weight W has the intruder
// directions among its top top_k left singular vectors (max |cos| to the
// base's below threshold_epsilon, default 0.5) scaled by lambda,
// W' = W + (λ−1)·Σ σⱼuⱼvⱼᵀ, and the trial's final metrics (target metric,
// forgetting), weights and spectra are those of the mitigated model. lambda
// is in [0, 1]: 1 changes nothing (bit for bit), 0 removes the intruders.
// The mitigation is part of the trial's identity, so a mitigated trial
// hashes differently from its plain twin; trials.parquet records its lambda
// in mitigate_lambda (null for plain trials) and the number of directions
// rescaled in extra's intruders_mitigated. Comparing intruder counts needs
// spectra = true. Only the builtin trainer applies it: a sweep with an
// external trainer ([trainer] kind = "command") and mitigate_intruders is
// refused. HF PEFT also re-factors the mitigated ΔW into a rank-r LoRA
// adapter; the trials here keep the mitigated merged weight as it is (see
// train.MitigateIntruders).
//
// # Search
//
// [search] samples n points from its axes' distributions and crosses each
// with the grid like one more grid value (innermost: a seed's, method's,
// task's and rank's trials list the points in order); a point's trials
// resolve and hash exactly like grid trials, so a searched trial has the
// ID of the grid trial with its values and resumes like one. kind =
// "random" draws each coordinate uniformly from a PCG seeded with seed;
// kind = "sobol" takes the first n points of the Sobol sequence (Joe–Kuo
// direction numbers, up to 20 axes) under a digital shift drawn from that
// PCG, which spreads n points more evenly than random draws (n a power of
// two keeps its balance best). Axes are taken in key order; log_uniform
// maps a coordinate u to low·(high/low)^u, uniform to low + u·(high−low),
// int_uniform and choice to equal shares of [0, 1). Sampled floats keep 4
// significant digits, so that labels stay short and a point is written
// exactly as TOML. The points depend on the [search] table alone — not on
// the grid, the machine or the run — and a key may not be both a grid axis
// and a search axis. [[include]] trials are not searched. A trainer key's
// bounds (both ends) and every choice are checked like grid values;
// method and task options are checked as the trials resolve, each error at
// the axis.
//
// # Early stopping
//
// [early_stopping] kind = "asha" runs the sweep under synchronous successive
// halving on the local executor (runner/asha.go; the Slurm executor refuses
// it for now). Trials compete within a group: equal method, rank, task,
// seed, steps, eval_every and intruder mitigation, differing only in other
// (searched or swept) hyperparameters. Rung k is step min_steps·eta^k while
// below steps, and the top rung is the trial's steps. Every trial of a
// group runs to rung 0; once all have, the best ⌈n/eta⌉ of its n by the
// split's metric at that step (ties to the lower plan index; NaN and
// diverged last) are rerun from step 0 to the next rung, the others end
// there with status stopped and their rung's metrics; a group down to one
// trial sends it straight to the top rung. Reruns from step 0 repeat the
// first steps bit for bit (training is deterministic), which keeps the
// outcome independent of workers and order and makes resume recompute the
// same schedule from the shards on disk. Every trial needs eval_every > 0
// and min_steps a multiple of it. [early_stopping] is not part of a
// trial's identity: the same trials run in full without it.
//
// # Timeouts
//
// Every trial runs under a deadline that covers its training and its
// after-trial analysis (spectra): [resources] timeout when the sweep sets
// one, else the default of DefaultTimeout,
//
//	10m + 1s × (steps × stages + pretrain_steps)
//
// with stages and pretrain_steps the trial's task options (1 and 0 for
// tasks without them; the first trial to need a base model pretrains it
// while the others that share it wait). A trial past its deadline is
// recorded timeout and runs again on resume; timeout = "0s" is the
// default too. The default is there so that
// no sweep can run forever, and it is generous: on 2 cores shared with
// other work (load average about 10), the slowest trials of
// experiments/*.toml took 8 s in quick.toml (mnist-split, limit 18m20s), 20 s in
// nightly.toml (modarith, its 1500-step base pretrained in the trial;
// nightly sets timeout = "5m"), and 171 s for a text-code trial of
// intruders.toml (rsLoRA rank 64, 45 s of it waiting for the base;
// limit 33m20s). Like the rest of [resources], the timeout is not part of
// a trial's identity.
//
// # Tune-then-test protocol
//
// A sweep with a [protocol] table of kind "tune" chooses hyperparameters
// on validation and tests the choice on fresh seeds, so that a method is
// compared at its tuned point rather than at a default that may collapse
// on the task:
//
//	[protocol]
//	kind = "tune"
//	metric = "val_metric"              # a trials.parquet column, read on validation; default val_metric
//	direction = "max"                  # or "min"; default: the metric's known direction
//	axes = ["lr", "alpha"]             # the tuned axes; default: every [grid] or [[include]]
//	                                   # axis with more than one value
//	tune_seeds = 1                     # count (0, 1, …) or list; default 1
//	test_seeds = 5                     # count (the seeds after the tune seeds) or list; default 5
//	budget = 8                         # most search points per group; default no bound
//
// The top-level seeds key is refused in such a sweep (its seeds are
// tune_seeds and test_seeds), and so is an include's seed. A
// configuration group is the set of trials that differ only in the tuned
// axes and the seed: method × rank × task, and any axis not tuned. The
// plan's trials are the search trials (Trial.Phase "search"): every point
// of the tuned axes on every tune seed; Plan.Protocol lists the groups and
// their points. The runner then chooses per group the point with the best
// mean metric over its tune seeds (ties go to the first point in plan
// order; a point with a tune seed that did not end ok does not compete),
// and runs it on the test seeds (Phase "test", Plan.TestTrial). Test seeds
// must differ from tune seeds: the chosen point's tune-seed runs are
// biased in its favour (it won on them). metric may not be a target_
// column: those are measured on the test split. budget bounds the search
// points of each group (each runs once per tune seed, so a group's search
// costs at most budget × tune seeds trials); a group over it is refused
// at load, naming the group. The phase is part of a trial's identity only
// when set, so plain sweeps keep their IDs.
//
// # Errors
//
// Every problem is an *Error located at file:line:col with the key path
// ("grid.method[1]", "include[0].rank") and, for misspelt names, the nearest
// valid one: `unknown method "lroa" (did you mean "lora"?)`. Independent
// problems are reported together, in file order. Caveats that do not stop
// a sweep (fewer than 3 seeds, an exclude that matches nothing) are
// Plan.Warnings.
package sweeps
