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
//	  trials/<trial_id>/  one trial's shard: trial.parquet, steps.parquet,
//	                      spectra.parquet (same schemas as above), its
//	                      checksums.json, and whatever the runner keeps
//	                      there (log, artifacts)
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
//	rank             int64   adapter rank; 0 for methods without one
//	task             string  e.g. "teacher-shift", "mnist-split"
//	seed             int64
//	config           string  canonical JSON of the resolved trial: method
//	                         and task options, trainer hyperparameters
//	                         (DuckDB: json_extract(config, '$.some.key'))
//
// Outcome:
//
//	status           string  ok | failed | diverged | timeout | cancelled
//	error            string  reason when not ok, else ""
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
// Final metrics, all nullable double; null when the trainer did not report
// the metric (or the trial ended before reporting it). "Target" data is
// what fine-tuning should learn (a continual task's last stage); "retain"
// data is the pretraining distribution. Loss is mean cross-entropy (nats);
// every builtin task's metric is argmax accuracy.
//
//	target_loss          loss on the target evaluation set, tuned model
//	target_metric        the task's metric on the target set, tuned model
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
// refusal_retention and refusal_base. An external trainer's summary names
// that are not columns land here too (docs/trainer-protocol.md).
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
