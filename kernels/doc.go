// Package kernels holds the numeric inner loops of the builtin engine:
// single-precision GEMM and the vector and row kernels the autodiff ops call.
//
// Every kernel's doc comment gives its reference loop. The pure-Go versions
// are the reference; SIMD versions, where present, must agree with them and
// must give results that do not depend on the number of goroutines used.
package kernels
