package sweeps

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestSobolFirstPoints checks the unshifted sequence against published first
// points of the Joe–Kuo Sobol sequence: SciPy's qmc.Sobol(d, scramble=False)
// (its documentation's 2-D example and its test suite's dimensions 1 and 3).
func TestSobolFirstPoints(t *testing.T) {
	want := [][]float64{ // dimensions 1, 2, 3
		{0, 0.5, 0.75, 0.25, 0.375, 0.875, 0.625, 0.125, 0.1875, 0.6875},
		{0, 0.5, 0.25, 0.75, 0.375, 0.875, 0.125, 0.625},
		{0, 0.5, 0.25, 0.75, 0.625, 0.125, 0.875, 0.375, 0.9375, 0.4375},
	}
	q := newSobol(3)
	for i := range 10 {
		p := q.point()
		for j, w := range want {
			if i < len(w) && p[j] != w[i] {
				t.Errorf("point %d dimension %d = %v, want %v", i, j+1, p[j], w[i])
			}
		}
		q.next()
	}
}

// TestSobolNets: in every supported dimension the first 2^m points put one
// point in each interval [k/2^m, (k+1)/2^m), and the first two dimensions
// form a (0, m, 2)-net (one point in each 2^a × 2^(m−a) box), with or
// without a digital shift.
func TestSobolNets(t *testing.T) {
	const m = 8
	for _, shift := range [][]uint32{make([]uint32, sobolMaxDim), {0xdeadbeef, 0x12345678, 7, 0x80000000}} {
		shift = append(shift, make([]uint32, sobolMaxDim)...)[:sobolMaxDim]
		q := newSobol(sobolMaxDim)
		pts := make([][]float64, 1<<m)
		for i := range pts {
			pts[i] = q.shifted(shift)
			q.next()
		}
		for j := range sobolMaxDim {
			seen := map[int]bool{}
			for _, p := range pts {
				seen[int(p[j]*(1<<m))] = true
			}
			if len(seen) != 1<<m {
				t.Errorf("shift %x: dimension %d: %d of %d intervals hit", shift[:2], j+1, len(seen), 1<<m)
			}
		}
		for a := 0; a <= m; a++ {
			seen := map[[2]int]bool{}
			for _, p := range pts {
				seen[[2]int{int(p[0] * float64(int(1)<<a)), int(p[1] * float64(int(1)<<(m-a)))}] = true
			}
			if len(seen) != 1<<m {
				t.Errorf("shift %x: dimensions 1, 2: %d of %d boxes of 2^%d × 2^%d hit", shift[:2], len(seen), 1<<m, a, m-a)
			}
		}
	}
}

const searchBase = `
name = "s"
seeds = 3
[grid]
method = ["lora"]
rank = [4]
task = ["mlp"]
[defaults]
steps = 90
eval_every = 10
`

// TestSearchPoints: the points are drawn from their distributions, crossed
// with the grid innermost, depend on [search] alone (not on the grid), and
// change with the seed.
func TestSearchPoints(t *testing.T) {
	for _, kind := range []string{"random", "sobol"} {
		t.Run(kind, func(t *testing.T) {
			search := fmt.Sprintf(`
[search]
kind = %q
n = 16
seed = 3
lr = {log_uniform = [1e-4, 1e-1]}
dropout = {uniform = [0, 0.3]}
init = {choice = ["kaiming", "gaussian"]}
warmup = {int_uniform = [0, 5]}
`, kind)
			p := mustParse(t, searchBase+search)
			if len(p.Trials) != 3*16 {
				t.Fatalf("%d trials, want 48 (3 seeds × 16 points)", len(p.Trials))
			}
			inits := map[string]int{}
			warmups := map[int]bool{}
			for i, tr := range p.Trials[:16] {
				lr, dr := tr.Train.LR, tr.MethodOptions["dropout"].(float64)
				if lr < 1e-4 || lr > 1e-1 || dr < 0 || dr > 0.3 || tr.Train.Warmup < 0 || tr.Train.Warmup > 5 {
					t.Errorf("point %d out of bounds: lr %v dropout %v warmup %d", i, lr, dr, tr.Train.Warmup)
				}
				if lr != round(lr, searchDigits) {
					t.Errorf("point %d: lr %v not rounded to %d digits", i, lr, searchDigits)
				}
				inits[tr.MethodOptions["init"].(string)]++
				warmups[tr.Train.Warmup] = true
				// Seeds are outermost: the other seeds repeat the points.
				for s := 1; s < 3; s++ {
					o := p.Trials[16*s+i]
					if o.Seed != int64(s) || o.Train.LR != lr || o.MethodOptions["dropout"] != dr {
						t.Errorf("seed %d point %d: lr %v dropout %v, want seed 0's %v %v", s, i, o.Train.LR, o.MethodOptions["dropout"], lr, dr)
					}
				}
			}
			if len(inits) != 2 || len(warmups) < 4 {
				t.Errorf("16 points drew inits %v and warmups %v", inits, warmups)
			}
			// Half the points on each side of the log-midpoint, for sobol
			// exactly (a net), for random roughly.
			low := 0
			for _, tr := range p.Trials[:16] {
				if tr.Train.LR < math.Sqrt(1e-4*1e-1) {
					low++
				}
			}
			if kind == "sobol" && low != 8 || low < 3 || low > 13 {
				t.Errorf("%d of 16 lrs below the log-midpoint", low)
			}

			// Another grid, same [search]: the same points.
			q := mustParse(t, strings.Replace(searchBase, `method = ["lora"]`, `method = ["lora", "rslora"]`, 1)+search)
			if got := q.Trials[0].Train.LR; got != p.Trials[0].Train.LR {
				t.Errorf("adding a method moved point 0: lr %v, was %v", got, p.Trials[0].Train.LR)
			}
			if ids := ids(q); !slices.Contains(ids, p.Trials[5].ID) {
				t.Error("adding a method changed the ID of lora's trials")
			}
			// Another seed: other points.
			r := mustParse(t, searchBase+strings.Replace(search, "seed = 3", "seed = 4", 1))
			if r.Trials[0].Train.LR == p.Trials[0].Train.LR && r.Trials[1].Train.LR == p.Trials[1].Train.LR {
				t.Error("another seed drew the same points")
			}
			// Parsing again: the same plan.
			if again := mustParse(t, searchBase+search); !slices.Equal(ids(again), ids(p)) {
				t.Error("the same file gave other trials")
			}
		})
	}
}

// TestSearchPointID: a searched trial has the ID of the grid trial with its
// values, so a search and a grid that meet share (and resume) trials.
func TestSearchPointID(t *testing.T) {
	p := mustParse(t, searchBase+`
[search]
n = 2
lr = {log_uniform = [1e-4, 1e-1]}
`)
	lr := p.Trials[0].Train.LR
	g := mustParse(t, strings.Replace(searchBase, "[defaults]", fmt.Sprintf("lr = [%v]\n[defaults]", lr), 1))
	if g.Trials[0].ID != p.Trials[0].ID {
		t.Errorf("grid trial with lr = %v has ID %s, searched trial %s", lr, g.Trials[0].ID, p.Trials[0].ID)
	}
}

func TestEarlyStoppingRungs(t *testing.T) {
	tr := func(steps, every int) Trial { return Trial{Train: TrainConfig{Steps: steps, EvalEvery: every}} }
	for _, c := range []struct {
		e     EarlyStopping
		t     Trial
		rungs []int
	}{
		{EarlyStopping{Eta: 3, MinSteps: 10}, tr(90, 10), []int{10, 30, 90}},
		{EarlyStopping{Eta: 3, MinSteps: 10}, tr(100, 10), []int{10, 30, 90, 100}},
		{EarlyStopping{Eta: 2}, tr(100, 20), []int{20, 40, 80, 100}},
		{EarlyStopping{Eta: 4, MinSteps: 100}, tr(100, 20), []int{100}},
	} {
		if got := c.e.Rungs(c.t); !slices.Equal(got, c.rungs) {
			t.Errorf("%+v, steps %d every %d: rungs %v, want %v", c.e, c.t.Train.Steps, c.t.Train.EvalEvery, got, c.rungs)
		}
	}
}
