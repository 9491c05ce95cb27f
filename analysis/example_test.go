package analysis_test

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"peftbench/analysis"
)

// A rank-1 update much stronger than the base adds one new top direction:
// one intruder dimension at ε = 0.5.
func ExampleIntruders() {
	rng := rand.New(rand.NewPCG(1, 1))
	n := 64
	w0 := mat.NewDense(n, n, nil)
	for i := range n {
		w0.Set(i, i, 1+float64(n-i)/float64(n)) // distinct singular values in (1, 2]
	}
	a, b := mat.NewVecDense(n, nil), mat.NewVecDense(n, nil)
	for i := range n {
		a.SetVec(i, rng.NormFloat64())
		b.SetVec(i, rng.NormFloat64())
	}
	var delta, w mat.Dense
	delta.Outer(0.5, a, b)
	w.Add(w0, &delta)

	cache := analysis.NewBaseCache("") // once per base model
	base, _ := cache.Get(w0)
	rep, _ := analysis.Intruders(base, &w, analysis.IntruderOptions{K: 10, Eps: []float64{0.5}})
	fmt.Println("intruders at ε=0.5:", rep.Counts[0])
	fmt.Println("top direction is the intruder:", rep.Dirs[0].Intruder[0])
	// Output:
	// intruders at ε=0.5: 1
	// top direction is the intruder: true
}
