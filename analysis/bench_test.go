package analysis

import (
	"math"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

// benchPair returns a base matrix with a Marchenko–Pastur-like spectrum
// (Gaussian entries, scaled like a Kaiming-initialised layer) and a tuned
// matrix W0 + ΔW with a rank-8 LoRA-like update: the hard case for
// randomized SVD, whose spectrum is flat below the update.
func benchPair(n int) (w0, w *mat.Dense) {
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	w0 = randDense(rng, n, n)
	w0.Scale(1/math.Sqrt(float64(n)), w0)
	var delta mat.Dense
	delta.Mul(randDense(rng, n, 8), randDense(rng, 8, n))
	delta.Scale(0.5/math.Sqrt(float64(n)), &delta)
	w = new(mat.Dense)
	w.Add(w0, &delta)
	return w0, w
}

func benchIntruders(b *testing.B, n int, method SVDMethod, cached bool) {
	w0, w := benchPair(n)
	var base *BaseSpectrum
	if cached {
		var err error
		if base, err = DecomposeBase(w0); err != nil {
			b.Fatal(err)
		}
	}
	defer reportCPU(b)()
	for b.Loop() {
		bs := base
		if !cached {
			var err error
			if bs, err = DecomposeBase(w0); err != nil {
				b.Fatal(err)
			}
		}
		rep, err := Intruders(bs, w, IntruderOptions{Eps: DefaultEpsilons, TopK: TopKOptions{Method: method}})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rep.Counts[4]), "intruders@0.5")
		b.ReportMetric(rep.Residual, "residual")
	}
}

// BenchmarkDecomposeBase1024 is the once-per-base-model cost at 1024.
func BenchmarkDecomposeBase1024(b *testing.B) {
	w0, _ := benchPair(1024)
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := DecomposeBase(w0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntruders1024 is one pair with the base decomposition included,
// comparable with one numpy.linalg.svd call of a 1024×1024 matrix.
func BenchmarkIntruders1024(b *testing.B) { benchIntruders(b, 1024, Auto, false) }

// BenchmarkIntruders1024Cached is one pair with the base cached (per trial).
func BenchmarkIntruders1024Cached(b *testing.B) { benchIntruders(b, 1024, Auto, true) }

// BenchmarkIntruders1024Randomized is the cached pair with randomized top-k.
func BenchmarkIntruders1024Randomized(b *testing.B) { benchIntruders(b, 1024, Randomized, true) }

func large(b *testing.B) {
	if testing.Short() || os.Getenv("PEFTBENCH_LARGE") == "" {
		b.Skip("4096×4096: set PEFTBENCH_LARGE=1 to run (minutes on 2 cores)")
	}
}

// BenchmarkDecomposeBase4096 is the once-per-base-model cost at 4096.
func BenchmarkDecomposeBase4096(b *testing.B) {
	large(b)
	w0, _ := benchPair(4096)
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := DecomposeBase(w0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntruders4096 is one pair at 4096 with the base cached (the
// per-trial cost); Auto picks randomized top-k at this size.
func BenchmarkIntruders4096(b *testing.B) {
	large(b)
	benchIntruders(b, 4096, Auto, true)
}

// reportCPU adds the process CPU time per operation as a metric: on a shared
// machine wall time measures the neighbours as much as the code.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric((cpuTime()-start).Seconds()/float64(b.N), "cpu-s/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
