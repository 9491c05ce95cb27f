package nn

import (
	"runtime"
	"sync"
)

// parallelFor calls fn on disjoint ranges covering [0, n), concurrently.
// Callers give each index work whose result does not depend on the others,
// so the split, which follows GOMAXPROCS, never changes a result.
func parallelFor(n int, fn func(lo, hi int)) {
	w := min(runtime.GOMAXPROCS(0), n)
	if w <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := range w {
		lo, hi := i*n/w, (i+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
