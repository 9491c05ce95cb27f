package main

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"time"

	"gonum.org/v1/gonum/mat"

	"peftbench/analysis"
	"peftbench/nn"
	"peftbench/tasks"
)

// intruderPair is a base matrix with a decaying spectrum and a tuned one:
// the base plus a rank-8 update, as a LoRA merge would give.
func intruderPair(n int) (w0, w *mat.Dense) {
	rng := nn.NewRNG(uint64(n), "perf/intruders")
	w0 = mat.NewDense(n, n, nil)
	for i := range n {
		for j := range n {
			w0.Set(i, j, float64(rng.Norm())/math.Sqrt(float64(n)))
		}
	}
	const r = 8
	b := mat.NewDense(n, r, nil)
	a := mat.NewDense(r, n, nil)
	for i := range n {
		for k := range r {
			b.Set(i, k, float64(rng.Norm())/math.Sqrt(float64(n)))
			a.Set(k, i, float64(rng.Norm()))
		}
	}
	w = mat.NewDense(n, n, nil)
	w.Mul(b, a)
	w.Add(w, w0)
	return w0, w
}

// measureIntruders times the intruder analysis of one n×n pair: with the
// base decomposition computed (intruders/n=N, what the first trial on a
// base pays) and with it cached (intruders/n=N/cached, what every later
// trial pays). For n above 1024 the base decomposition is cached on disk in
// the spectra cache, so only the first bench perf --large pays for it; its
// time is then reported as intruders/n=N/base when computed.
func measureIntruders(n int, stderr io.Writer) ([]perfFigure, error) {
	w0, w := intruderPair(n)
	opt := analysis.IntruderOptions{K: 10, Eps: []float64{0.5}}
	name := fmt.Sprintf("intruders/n=%d", n)
	var figs []perfFigure
	var base *analysis.BaseSpectrum
	if n <= 1024 {
		start := time.Now()
		b, err := analysis.DecomposeBase(w0)
		if err != nil {
			return nil, err
		}
		if _, err := analysis.Intruders(b, w, opt); err != nil {
			return nil, err
		}
		figs = append(figs, perfFigure{name, round4(time.Since(start).Seconds()), "s"})
		base = b
	} else {
		dir := ""
		if d, err := tasks.DefaultCacheDir(); err == nil {
			dir = filepath.Join(d, "spectra")
		}
		cache := analysis.NewBaseCache(dir)
		start := time.Now()
		b, err := cache.Get(w0)
		if err != nil {
			return nil, err
		}
		if el := time.Since(start); el > 5*time.Second {
			figs = append(figs, perfFigure{name + "/base", round4(el.Seconds()), "s"})
		} else {
			fmt.Fprintf(stderr, "bench perf: %s: base decomposition read from the cache in %s\n", name, el.Round(time.Millisecond))
		}
		base = b
	}
	start := time.Now()
	rep, err := analysis.Intruders(base, w, opt)
	if err != nil {
		return nil, err
	}
	figs = append(figs, perfFigure{name + "/cached", round4(time.Since(start).Seconds()), "s"})
	fmt.Fprintf(stderr, "bench perf: %s: %d intruders at ε = 0.5 (rank-8 update planted)\n", name, rep.Counts[0])
	return figs, nil
}
