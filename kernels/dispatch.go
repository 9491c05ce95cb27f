package kernels

// The exported kernels call these; SIMD builds replace them at init.
var adamW = adamWRef
