// Package nn is peftbench's builtin training engine: dense float32 tensors,
// reverse-mode automatic differentiation on a tape, the layers and models
// the tasks pretrain and fine-tune (an MLP classifier and a small
// decoder-only transformer), optimisers, learning-rate schedules and
// deterministic random streams.
//
// A Graph records one forward pass. Every op returns a tensor whose buffers
// come from the graph's arena; Reset rewinds the arena so that the next
// step reuses them, and tensors returned by ops are valid only until then.
// Parameters (Param) live outside any graph. A graph and a model are for
// one goroutine at a time; ops parallelise internally.
//
// Matrix products go through kernels.Sgemm. Element-wise and per-row loops
// are small functions in this package (vec.go) so faster kernels can
// replace them one at a time. No op's result depends on the number of
// goroutines: work is split by rows or attention heads, each computed by
// one goroutine, and reductions run in a fixed order with float64
// accumulators.
//
// Conventions, matched by the PyTorch cross-check (testdata/torch_check.py):
//   - GELU is the tanh approximation (torch approximate="tanh", GPT-2).
//   - LayerNorm and RMSNorm use ε = NormEps = 1e-5; LayerNorm's variance
//     is biased, as torch's.
//   - CrossEntropy ignores rows with a negative label (torch ignore_index)
//     and averages over the rest.
//   - AdamW is torch.optim.AdamW's update; ClipGradNorm is
//     clip_grad_norm_'s; LRSchedule follows HF transformers' schedules.
//   - A linear layer owns its weight and bias; Model.Params lists only the
//     other tensors (embeddings, norms), which pretraining trains. Full
//     fine-tuning is the Full adapter (methods/full.go) on each targeted
//     linear: it trains those layers' weights and biases, not Params.
//   - Linear layers initialise like torch.nn.Linear in the MLP and
//     GPT-2-style (N(0, 0.02²), zero bias) in the transformer.
package nn
