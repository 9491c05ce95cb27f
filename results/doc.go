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
//	  trials/<trial_id>/  one trial's shard: trial.parquet, steps.parquet,
//	                      spectra.parquet (same schemas as above), and
//	                      whatever the runner keeps there (log, artifacts)
//
// Every file is written to a temp name starting ".tmp-" in its folder,
// synced, renamed into place, and the folder synced, so a crash or kill
// never leaves a partial file under a real name. A shard counts only when
// all three of its files exist. Compaction orders trials by plan_index;
// equal shards give byte-identical tables.
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
//	task             string  e.g. "regression", "mnist"
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
//	total_params     int64   parameters of the model with the adapter
//	steps            int64   optimiser steps taken
//	wall_seconds     double  training wall time, seconds
//	peak_mem_bytes   int64   peak memory, bytes; 0 when not measured
//	started_at       timestamp(µs, UTC), null if never started
//	ended_at         timestamp(µs, UTC), null if never ended
//	host             string  machine that ran it
//
// Final metrics, all nullable double; null when the task does not report
// the metric (or the trial ended before reporting it):
//
//	target_loss          loss on the fine-tuning task's test split
//	target_metric        the task's headline metric (accuracy, R², ...)
//	retain_loss_before   loss on retain data, base model
//	retain_loss_after    loss on retain data, tuned model
//	retain_metric_before the retain task's metric, base model
//	retain_metric_after  the retain task's metric, tuned model
//	forgetting           cross-entropy of the tuned model against the base
//	                     model's predictions on retain data (nats)
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
// Task-specific metrics:
//
//	extra  map<string, double>, keys sorted; e.g. refusal_retention
//
// # steps.parquet
//
// Long format, one row per recorded metric value, ordered by trial
// (plan_index) then step; rows of one step keep the order they were
// reported in.
//
//	trial_id  string
//	step      int64   optimiser step (0 = before training)
//	split     string  "train", "eval", "retain", ...
//	metric    string  "loss", "acc", "lr", "grad_norm", ...
//	value     double  NaN is kept as NaN (a diverged loss), never null
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
// go_version, host, harness_version, started and ended (RFC 3339).
package results
