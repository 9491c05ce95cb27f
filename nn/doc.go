// Package nn is peftbench's builtin training engine: dense float32 tensors,
// reverse-mode automatic differentiation on a tape, the layers and models
// the tasks pretrain and fine-tune (an MLP classifier and a small
// decoder-only transformer), optimisers, learning-rate schedules and
// deterministic random streams.
//
// A Graph records one forward pass. Every op returns a tensor whose buffers
// come from the graph's arena; Reset rewinds the arena so that the next
// step reuses them, and tensors returned by ops are valid only until then.
// Parameters (Param) live outside any graph.
//
// Matrix products go through kernels.Sgemm. Element-wise and per-row loops
// are small functions in this package (see vec.go) so faster kernels can
// replace them one at a time. No op's result depends on the number of
// goroutines: work is split by rows with each row computed by one
// goroutine, and reductions over many values run in a fixed order.
package nn
