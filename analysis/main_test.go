package analysis

import (
	"os"
	"testing"

	"gonum.org/v1/gonum/blas/blas64"

	"peftbench/internal/parblas"
)

// TestMain runs the tests and benchmarks on the BLAS the bench binary
// installs (parblas), so they measure what bench runs; parblas leaves
// small products to gonum, which most tests use.
func TestMain(m *testing.M) {
	blas64.Use(parblas.Implementation{})
	os.Exit(m.Run())
}
