// Package analysis answers the questions researchers ask of PEFT runs, as
// pure computation on float64 matrices and slices:
//
//   - spectra: singular values of the base and tuned weights, intruder
//     dimensions (Shuttleworth et al. 2024, "LoRA vs Full Fine-tuning: An
//     Illusion of Equivalence", arXiv 2410.21228), effective rank (Roy &
//     Vetterli 2007) and the rank holding 90% of ΔW's spectral energy
//     (Biderman et al. 2024, "LoRA Learns Less and Forgets Less", arXiv
//     2405.09673);
//   - fits: forgetting against fine-tuning loss, L_f = a − b·L_ft, and
//     forgetting as a shifted power law in trainable parameters P and steps
//     N, L_f = c + A·P^α·N^β (Kalajdzievski 2024, "Scaling Laws for
//     Forgetting When Fine-Tuning Large Language Models", arXiv 2401.05605),
//     with bootstrap confidence intervals and R²;
//   - statistics across seeds: mean, standard deviation, bootstrap CI;
//   - regression detection: the Mann–Whitney U test (exact for small
//     samples) with a minimum relative effect, benchstat style.
//
// Every random choice (bootstrap resamples, randomized SVD test vectors)
// uses a fixed seed, so a result is a function of its inputs only.
//
// Robustness: a matrix holding a NaN or an infinity is refused with an
// error wrapping ErrNonFinite (FillShard names the layer and the tensor);
// every iterative loop has a bound and fails with an error past it; the
// long entry points take a context (FillShard, the ...Context functions)
// and return its error soon after it is done. The base-decomposition cache
// trusts a file only when its size, matrix hash, dimensions and SHA-256
// agree with the matrix asked for (the size checked before anything is
// allocated); any other file is recomputed and replaced.
package analysis
