package analysis

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"peftbench/results"
	"peftbench/safetensors"
)

// within runs f in a goroutine and fails the test if it has not returned
// after d (a hang: the goroutine is left behind).
func within(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s still running after %s", what, d)
		return nil
	}
}

// TestFillShardNonFinite: a weights file whose tuned (or base) tensor holds
// a NaN or an infinity fails the analysis with an error naming the layer
// and the tensor, within a bounded time; it used to retry a tridiagonal
// solve forever.
func TestFillShardNonFinite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tensor string
		v      float32
	}{
		{"NaN tuned", "layer1.tuned", float32(math.NaN())},
		{"Inf tuned", "layer1.tuned", float32(math.Inf(1))},
		{"NaN base", "layer1.base", float32(math.NaN())},
		{"-Inf base", "layer1.base", float32(math.Inf(-1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, 9))
			ok := plantedLayer(rng, "layer0", 24, 16, true)
			bad := plantedLayer(rng, "layer1", 24, 16, true)
			data := bad.Tuned
			if strings.HasSuffix(tc.tensor, ".base") {
				data = bad.Base
			}
			data[5*16+3] = tc.v
			path := filepath.Join(t.TempDir(), "weights.safetensors")
			var ts []safetensors.Tensor
			for _, l := range []Layer{ok, bad} {
				ts = append(ts,
					safetensors.Tensor{Name: l.Name + ".base", Shape: []int{l.Rows, l.Cols}, Data: l.Base},
					safetensors.Tensor{Name: l.Name + ".tuned", Shape: []int{l.Rows, l.Cols}, Data: l.Tuned})
			}
			if err := safetensors.WriteFile(path, ts, nil); err != nil {
				t.Fatal(err)
			}
			err := within(t, 10*time.Second, "FillShard", func() error {
				layers, err := ReadLayers(path)
				if err != nil {
					return err
				}
				return FillShard(context.Background(), &results.Shard{}, layers, ShardOptions{Cache: NewBaseCache(t.TempDir())})
			})
			if err == nil || !errors.Is(err, ErrNonFinite) {
				t.Fatalf("err = %v, want one wrapping ErrNonFinite", err)
			}
			for _, want := range []string{`layer "layer1"`, tc.tensor, "row 5, column 3"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to mention %s", err, want)
				}
			}
		})
	}
}

// TestNonFiniteRefused: every entry point of the spectral analysis refuses
// a matrix holding a NaN or an infinity with an error, in bounded time.
func TestNonFiniteRefused(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 1))
	good := randDense(rng, 20, 12)
	base, err := DecomposeBase(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		bad := mat.DenseCopyOf(good)
		bad.Set(7, 2, v)
		calls := []struct {
			name string
			f    func() error
		}{
			{"DecomposeBase", func() error { _, err := DecomposeBase(bad); return err }},
			{"TopK exact", func() error { _, err := TopK(bad, 5, TopKOptions{Method: Exact}); return err }},
			{"TopK randomized", func() error { _, err := TopK(bad, 5, TopKOptions{Method: Randomized}); return err }},
			{"Intruders", func() error { _, err := Intruders(base, bad, IntruderOptions{}); return err }},
			{"AnalyzeLayer", func() error { _, err := AnalyzeLayer(base, good, bad, IntruderOptions{}); return err }},
			{"SingularValues", func() error { _, err := SingularValues(bad); return err }},
			{"BaseCache.Get", func() error { _, err := NewBaseCache(t.TempDir()).Get(bad); return err }},
		}
		for _, c := range calls {
			err := within(t, 10*time.Second, c.name, c.f)
			if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "row 7, column 2") {
				t.Errorf("%s with %v: err = %v, want ErrNonFinite at row 7, column 2", c.name, v, err)
			}
		}
	}
	// Finite entries whose squares overflow: W·Wᵀ is not finite.
	huge := mat.DenseCopyOf(good)
	huge.Scale(1e160, huge)
	err = within(t, 10*time.Second, "DecomposeBase (overflow)", func() error { _, err := DecomposeBase(huge); return err })
	if !errors.Is(err, ErrNonFinite) {
		t.Errorf("overflowing W·Wᵀ: err = %v, want ErrNonFinite", err)
	}
}

// TestTridiagRetryBounded: the inverse iteration's retry of a failed
// shifted solve is bounded (the solve made to fail every time, as it did
// forever once the input held a NaN), and matrices whose entries are all
// huge or all tiny, where the shifted solves overflowed or the shift
// perturbation underflowed to nothing (another endless retry, or a panic
// in gonum's Dsterf), are solved.
func TestTridiagRetryBounded(t *testing.T) {
	d := []float64{2, 1, 3, 1}
	e := []float64{0.5, 0.5, 0.5}
	saved := gtsv
	gtsv = func(int, []float64, []float64, []float64, []float64) bool { return false }
	err := within(t, 10*time.Second, "tridiagTopEigen", func() error {
		_, _, err := tridiagTopEigen(context.Background(), d, e, 2)
		return err
	})
	gtsv = saved
	if err == nil || !strings.Contains(err.Error(), "failed") {
		t.Errorf("failing solve: err = %v, want the bounded retry's error", err)
	}
	want, _, err := tridiagTopEigen(context.Background(), d, e, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, scale := range []float64{0x1p1020, 0x1p-1000, 0x1p-1060, 0x1p600, 0x1p-500} {
		ds, es := make([]float64, len(d)), make([]float64, len(e))
		for i := range d {
			ds[i] = d[i] * scale
		}
		for i := range e {
			es[i] = e[i] * scale
		}
		var lam []float64
		err := within(t, 10*time.Second, "tridiagTopEigen", func() error {
			var err error
			lam, _, err = tridiagTopEigen(context.Background(), ds, es, 2)
			return err
		})
		if err != nil {
			t.Errorf("scaled by %g: %v", scale, err)
			continue
		}
		tol := 1e-12
		if scale < 0x1p-1022 {
			tol = 1e-4 // the subnormal input itself holds a few bits
		}
		for i := range want {
			if got := lam[i] / scale; math.Abs(got-want[i]) > tol*math.Abs(want[i]) {
				t.Errorf("scaled by %g: λ%d/scale = %v, want %v", scale, i, got, want[i])
			}
		}
	}
}

// countdownCtx is a context whose Err turns to context.Canceled after n
// calls: it observes, deterministically, whether an analysis looks at its
// context inside a layer and not only between layers.
type countdownCtx struct {
	context.Context
	n atomic.Int64
}

func (c *countdownCtx) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// TestFillShardCancelled: a cancelled context ends the analysis promptly
// with ctx's error: one cancelled before the call, one cancelled while a
// layer is being analysed (the old FillShard looked only between layers,
// so a one-layer trial ran to the end), and a caller waiting on another's
// base decomposition.
func TestFillShardCancelled(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	layers := []Layer{plantedLayer(rng, "big", 300, 200, true)}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := FillShard(ctx, &results.Shard{}, layers, ShardOptions{})
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Errorf("cancelled before: err = %v after %s, want context.Canceled at once", err, time.Since(start))
	}

	// Err is live at the first look (before the layer), cancelled after.
	cd := &countdownCtx{Context: context.Background()}
	cd.n.Store(1)
	var s results.Shard
	err = within(t, 30*time.Second, "FillShard", func() error {
		return FillShard(cd, &s, layers, ShardOptions{Cache: NewBaseCache(t.TempDir())})
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled inside the layer: err = %v, want context.Canceled", err)
	}
	if s.Spectra != nil {
		t.Error("a cancelled analysis filled the shard")
	}

	// The base decomposition itself looks at ctx between stages.
	for n := range int64(4) {
		cd := &countdownCtx{Context: context.Background()}
		cd.n.Store(n)
		w0 := dense(layers[0].Rows, layers[0].Cols, layers[0].Base)
		if _, err := DecomposeBaseContext(cd, w0); !errors.Is(err, context.Canceled) {
			t.Errorf("DecomposeBaseContext cancelled after %d looks: err = %v", n, err)
		}
		if _, err := TopKContext(cd, w0, 10, TopKOptions{Method: Randomized}); !errors.Is(err, context.Canceled) {
			t.Errorf("TopKContext (randomized) cancelled after %d looks: err = %v", n, err)
		}
	}
}

// TestBaseCacheWaiterCancelled: a caller waiting for another caller's
// decomposition of the same matrix returns its own ctx's error when that
// is cancelled; a computation cancelled by its caller is not cached, and
// a live waiter then computes it itself.
func TestBaseCacheWaiterCancelled(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	w0 := randDense(rng, 40, 30)
	c := NewBaseCache("")
	// Plant an in-flight entry, as a slow computation would leave.
	key := MatrixHash(w0)
	e := &cacheEntry{done: make(chan struct{})}
	c.m[key] = e
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := within(t, 10*time.Second, "GetContext", func() error { _, err := c.GetContext(ctx, w0); return err })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter: err = %v, want its deadline", err)
	}
	// The leader is cancelled: a live waiter retries and computes.
	res := make(chan error, 1)
	go func() {
		bs, err := c.GetContext(context.Background(), w0)
		if err == nil && len(bs.Sigma) != 30 {
			err = errors.New("bad decomposition")
		}
		res <- err
	}()
	time.Sleep(10 * time.Millisecond)
	e.err = context.Canceled
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
	close(e.done)
	select {
	case err := <-res:
		if err != nil {
			t.Errorf("live waiter after the leader's cancellation: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("live waiter blocked")
	}
}
