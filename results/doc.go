// Package results writes and reads a sweep's results: per-trial Parquet
// shards written durably while the sweep runs, the three tables compaction
// merges them into, and the manifest.
//
// # Folder layout
//
//	results/<sweep>/
//	  manifest.json       what ran: sweep source, resolved trials, git commit, times
//	  trials.parquet      one row per trial
//	  steps.parquet       one row per (trial, step, split, metric)
//	  spectra.parquet     one row per (trial, layer, singular direction)
//	  checksums.json      SHA-256 of the three tables, and the shards they
//	                      were compacted from
//	  .lock               held by the run writing the folder (pid, host)
//	  annotations.json    the user's tags and notes per trial (bench serve;
//	                      AnnotationsFile); never written by a run
//	  tune.json           a tune sweep's selection ([protocol] kind = "tune",
//	                      TuneRecord): per group the search points' validation
//	                      scores, the point chosen and its test trials
//	  trials/<trial_id>/  one trial's shard: trial.parquet, steps.parquet,
//	                      spectra.parquet (same schemas as above), its
//	                      checksums.json, and whatever the runner keeps
//	                      there (log, artifacts)
//	    live.jsonl        while the trial runs: its step rows, appended as
//	                      the trainer reports them (LiveFile); removed once
//	                      the shard is written, which wins over it
//
// Every file is written to a temp name starting ".tmp-" in its folder,
// synced, renamed into place, and the folder synced, so a crash or kill
// never leaves a partial file under a real name. A shard counts only when
// all three of its files exist. Compaction orders trials by plan_index;
// equal shards give byte-identical tables.
//
// Every read checks a file against the SHA-256 in the checksums.json
// beside it (Parquet's page CRCs leave page headers and the footer
// unchecked, where one flipped bit can change a number), and the manifest
// against its own checksum field: a damaged file is an error naming it
// (wrapping ErrDamaged), never other numbers. A damaged shard's error says
// to delete its trial folder, which reruns that trial; nothing is deleted
// for the user. Folders written before checksums existed read unchecked.
// TablesStale tells whether the tables hold exactly the shards there are.
//
// The tables read without this tool, e.g. in DuckDB:
//
//	SELECT method, rank, avg(target_metric), avg(forgetting)
//	FROM 'results/quick/trials.parquet' WHERE status = 'ok' GROUP BY ALL;
//	SELECT t.method, i.epsilon, sum(i.count)
//	FROM (SELECT method, unnest(intruders) AS i FROM 'results/quick/trials.parquet') t
//	GROUP BY ALL;
//	SELECT extra['refusal_retention'] FROM 'results/quick/trials.parquet';
//
// or in pandas: pd.read_parquet("results/quick/trials.parquet"); intruders
// come as arrays of {"epsilon", "count"} dicts (df.explode("intruders")),
// extra as lists of (key, value) tuples (dict(row.extra)).
//
// Columns are compressed with zstd (tables) or snappy (shards). Nothing in
// the Parquet files varies from run to run except the columns that record
// the run itself (wall_seconds, started_at, ended_at, host).
//
// # trials.parquet
//
// Identity:
//
//	sweep            string  sweep name
//	trial_id         string  hash of the fully resolved trial config
//	plan_index       int64   position in the expanded plan (row order)
//	method           string  e.g. "lora", "dora", "full"
//	rank             int64   adapter rank; null for methods without one
//	                         (full, ln-tuning, …; files written before
//	                         this change have 0 there). TrialRow.Rank is 0
//	task             string  e.g. "teacher-shift", "mnist-split"
//	seed             int64
//	phase            string  the config's "phase": "search" (choosing
//	                         hyperparameters on validation) or "test"
//	                         (the chosen point on test seeds) under a tune
//	                         protocol; null for a plain sweep
//	config           string  canonical JSON of the resolved trial: method
//	                         and task options, trainer hyperparameters
//	                         (DuckDB: json_extract(config, '$.some.key');
//	                         each is also a column of its own, see
//	                         Hyperparameter columns)
//
// Outcome:
//
//	status           string  ok | failed | diverged | timeout | cancelled |
//	                         stopped (not promoted by [early_stopping]: its
//	                         metrics and steps are its last rung's)
//	error            string  reason when not ok; null when ok (files
//	                         written before this change have "")
//	attempts         int64   runs of this trial including retries
//	diverged_step    int64   step at which loss went NaN/Inf; null unless diverged
//	trainable_params int64   parameters the method trains
//	total_params     int64   parameters of the tuned model: the base
//	                         model's and the adapter's (full fine-tuning
//	                         adds none: it trains the base's own tensors)
//	steps            int64   optimiser steps taken
//	wall_seconds     double  training wall time, seconds
//	peak_mem_bytes   int64   peak memory, bytes; 0 when not measured
//	started_at       timestamp(µs, UTC), null if never started
//	ended_at         timestamp(µs, UTC), null if never ended
//	host             string  machine that ran it
//
// Efficiency, reported by the trainer under these summary names; null
// when it did not measure them (external trainers, files written before
// they existed):
//
//	train_seconds          double  wall time of the trial excluding waiting
//	                               for, or building, the base model (s)
//	examples_per_s         double  training examples per second
//	tokens_per_s           double  training tokens per second; text tasks only
//	ms_per_step            double  mean wall time of one optimiser step (ms)
//	optimizer_state_bytes  int64   bytes of the optimiser's state (AdamW's
//	                               moments; 0 for plain SGD)
//	adapter_bytes          int64   size of the adapter's safetensors file
//	forward_ms_unmerged    double  forward latency with the adapter attached (ms)
//	forward_ms_merged      double  forward latency with it merged (ms)
//	merge_error            double  max |merged − adapter forward| over the
//	                               evaluation outputs
//
// Final metrics, all nullable double unless marked; null when the trainer
// did not report the metric (or the trial ended before reporting it).
// "Target" data is what fine-tuning should learn (a continual task's last
// stage); "validation" data is drawn like the target set, disjoint from it
// and from retain data, for choosing hyperparameters; "retain" data is
// the pretraining distribution. Loss is mean cross-entropy (nats); every
// builtin task's metric is argmax accuracy.
//
//	target_loss          loss on the target evaluation set, tuned model
//	target_metric        the task's metric on the target set, tuned model
//	target_metric_name   string: the metric behind target_metric and
//	                     val_metric ("accuracy" for every builtin task);
//	                     null when the trainer does not say (external
//	                     trainers)
//	val_loss             loss on the validation set, tuned model
//	val_metric           the task's metric on the validation set
//	retain_loss_before   loss on retain data, base model
//	retain_loss_after    loss on retain data, tuned model
//	retain_metric_before the task's metric on retain data, base model
//	retain_metric_after  the task's metric on retain data, tuned model
//	forgetting           KL(p_base ‖ p_tuned) on retain data, mean per row
//	                     (nats): exactly 0 for the untouched model. The raw
//	                     soft cross-entropy of Kalajdzievski (2024), which
//	                     exceeds it by the base model's entropy, is
//	                     forgetting_ce in extra
//
// Spectra summary (filled by analysis; empty/null until then):
//
//	intruders       list<struct<epsilon double, count int64>>: intruder
//	                dimensions at each threshold ε, summed over targeted
//	                matrices; empty when not analysed
//	effective_rank  double, null when not analysed: mean effective rank
//	                of ΔW over targeted matrices
//	energy_rank_90  double, null when not analysed: rank needed for 90%
//	                of ΔW's spectral energy
//
// Treatment after training:
//
//	mitigate_lambda  double, null for a plain trial: the lambda of HF
//	                 PEFT's intruder-dimension mitigation the model had
//	                 before its final evaluation and spectra
//	                 ([analysis] mitigate_intruders; its threshold_epsilon
//	                 and top_k are in config); the number of directions
//	                 it rescaled is intruders_mitigated in extra
//
// Every other summary metric a trainer reports:
//
//	extra  map<string, double>, keys sorted
//
// The builtin trainer puts there, for every task: target_loss_before and
// target_metric_before (the base model on the target set),
// forgetting_ce, and val_loss and val_metric (the tuned model on the
// validation set, target_metric's metric: what selection may look at); for continual tasks (stages > 1) "<stage>_accuracy" for
// each stage's target set after the last stage (teacher-shift's stages are
// T1, T2, …, mnist-permuted's P1, P2, …); for safety-guard
// refusal_retention and refusal_base. Under [early_stopping] the runner adds
// steps_executed (the steps the schedule trained the trial for, each rung's
// rerun from step 0 counted; their sum over trials is the search's cost)
// and rung_step (the step its last run stopped at: the rung it reached).
// An external trainer's summary names that are not columns land here too
// (docs/trainer-protocol.md).
//
// # Hyperparameter columns
//
// After its fixed columns, a sweep's trials.parquet has one nullable
// column per hyperparameter of its trials' config, so a query can group by
// lr directly (DuckDB: SELECT lr, avg(target_metric) FROM
// 'trials.parquet' GROUP BY lr). Which columns there are depends on the
// sweep: compaction derives them from the config JSON of the trials it
// holds, and the file's key-value metadata "peftbench.params" lists each
// one's name, config key and type. Names:
//
//	train.<key>               <key>: steps (as train_steps, since steps
//	                          is the steps taken), batch, lr, optimizer,
//	                          momentum, beta1, beta2, eps, weight_decay,
//	                          schedule, warmup, grad_clip, eval_every,
//	                          targets
//	method_options.<key>      <key>: alpha, dropout, init, …; method_<key>
//	                          when <key> is a fixed column or a train key
//	                          (method_rank)
//	task_options.<key>        task_<key>: task_hidden, task_pretrain_steps, …
//	mitigate_intruders.<key>  mitigate_<key>: mitigate_threshold_epsilon,
//	                          mitigate_top_k (its lambda is mitigate_lambda)
//	any other key             its own name (config_<key> on a clash), or
//	                          <key>_<sub> for an object's members
//
// A name still taken gets a suffix _2, _3, …. A trial without the key has
// null there (a method's options are only on its own trials). Types: bool,
// string, int64 when every value is an integer, double when any is not
// (and always for the float train keys lr, momentum, beta1, beta2, eps,
// weight_decay, grad_clip and mitigate_threshold_epsilon); the JSON of a
// float option equal to an integer (alpha = 16.0) cannot be told from an
// integer's, so such a column is int64 until some trial has a fraction.
// Lists (targets) and keys whose values differ in kind are strings of
// JSON text. Columns follow train's order, then method, task and
// mitigation options each sorted. A shard's trial.parquet has the fixed
// columns only; TrialRow.Params holds the values by column name.
//
// `bench export-table DIR --format csv|jsonl` writes the same columns as
// a flat table for tools without Parquet (pandas from Debian's packages),
// then, where the sweep has annotations, a tags (comma-joined) and a note
// column.
//
// # steps.parquet
//
// Long format, one row per recorded metric value, ordered by trial
// (plan_index) then step; rows of one step keep the order they were
// reported in.
//
//	trial_id  string
//	step      int64   see below
//	split     string  see below
//	metric    string  see below
//	value     double  NaN is kept as NaN (a diverged loss), never null
//
// The builtin trainer writes these splits and metrics:
//
//	train   loss, grad_norm, lr     the step's batch loss (before its
//	                                update), the gradient's global norm
//	                                before clipping, the learning rate;
//	                                every max(1, steps/100)-th step and the
//	                                last; step is the step's 0-based index
//	val     loss, accuracy          the stage's validation set (held out
//	                                from target and retain, for choosing
//	                                hyperparameters), every eval_every
//	                                steps and at the end of each stage;
//	                                step is the number of steps taken
//	target  loss, accuracy          the stage's target set, at the same steps
//	retain  loss, accuracy          retain data, at the same steps
//	stage   <stage>_loss,           continual tasks only: at the end of each
//	        <stage>_accuracy        stage, the target set of every stage so
//	                                far (T1_loss, T1_accuracy, …)
//
// Steps count across a continual task's stages. An external trainer may
// write any split and metric names.
//
// # spectra.parquet
//
// Written with this schema even while no analysis has filled it.
//
//	trial_id     string
//	layer        string  targeted matrix, e.g. "blocks.0.attn.q"
//	sv_index     int64   0-based index of the tuned singular value, descending
//	sigma_base   double  singular value of the base matrix at sv_index
//	sigma_tuned  double  singular value of the merged tuned matrix
//	max_cos      double  max |cos| between this tuned left singular vector
//	                     and all base left singular vectors
//	intruder     list<bool>  max_cos < ε for each ε, in the order of the
//	                     epsilons in the trial's intruders column
//
// # manifest.json
//
// JSON object with sweep, description, sweep_file, sweep_source (the
// frozen sweep text), source_hash, trials (the resolved plan), git_commit,
// go_version, host, harness_version, started and ended (RFC 3339), and
// last checksum: "sha256:<hex>" of the file's bytes without that field.
package results
