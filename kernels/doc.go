// Package kernels holds the numeric inner loops of the builtin engine:
// single-precision GEMM and the vector and row kernels the autodiff ops call;
// and a double-precision GEMM (Dgemm) for the spectral analysis, which
// internal/parblas hands gonum's LAPACK.
//
// Every kernel's doc comment gives its reference loop. The pure-Go versions
// are the reference; SIMD versions, where present, must agree with them and
// must give results that do not depend on the number of goroutines used.
//
// On amd64 the SIMD versions are chosen at run time by CPU feature
// (golang.org/x/sys/cpu): Sgemm packs its operands and runs a 12×32 or 16×16
// AVX-512 micro-kernel, or a 6×16 AVX2+FMA one (a non-transposed A is read
// in place by a "direct" variant of the kernel, which saves its packing and
// gives bit-identical tiles); Dgemm packs and runs a 6×8 AVX2+FMA kernel
// (dgemm_amd64.s, written by hand); the vector and row kernels
// use AVX2+FMA, with Go loops for the tails. The noasm build tag, and any
// other architecture, leaves only the pure-Go code. sgemm_amd64.s and
// vecops_amd64.s are written by gen_asm.go (go generate); vec_amd64.s is
// written by hand.
package kernels
