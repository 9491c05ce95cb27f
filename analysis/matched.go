package analysis

import (
	"cmp"
	"math"
	"slices"
)

// Interpolate returns y at x0 on the piecewise-linear curve through the
// points (xs[i], ys[i]) taken in increasing x, and false when x0 lies
// outside the points' range or no point is finite. Points with equal x
// merge into their mean y.
//
// It reads a metric off at a matched level of another: Shuttleworth et al.
// 2024 compare LoRA and full fine-tuning at equal test accuracy, so each
// configuration's learning-rate sweep traces a curve of (target loss,
// intruder count) and the count is compared at a common loss. It does not
// extrapolate: a configuration that never reaches the level has no value.
func Interpolate(xs, ys []float64, x0 float64) (float64, bool) {
	type pt struct{ x, y float64 }
	var pts []pt
	for i := range min(len(xs), len(ys)) {
		if isFinite(xs[i]) && isFinite(ys[i]) {
			pts = append(pts, pt{xs[i], ys[i]})
		}
	}
	if len(pts) == 0 || !isFinite(x0) {
		return 0, false
	}
	slices.SortStableFunc(pts, func(a, b pt) int { return cmp.Compare(a.x, b.x) })
	// Merge equal x.
	merged := pts[:0]
	for i := 0; i < len(pts); {
		j, sum := i, 0.0
		for ; j < len(pts) && pts[j].x == pts[i].x; j++ {
			sum += pts[j].y
		}
		merged = append(merged, pt{pts[i].x, sum / float64(j-i)})
		i = j
	}
	pts = merged
	if x0 < pts[0].x || x0 > pts[len(pts)-1].x {
		return 0, false
	}
	i, found := slices.BinarySearchFunc(pts, x0, func(p pt, x float64) int { return cmp.Compare(p.x, x) })
	if found {
		return pts[i].y, true
	}
	a, b := pts[i-1], pts[i]
	t := (x0 - a.x) / (b.x - a.x)
	return a.y + t*(b.y-a.y), true
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// A Run is one trial on a matched curve: its configuration along the
// swept axis (an index), its seed, and its (x, y), e.g. target loss and
// intruder count.
type Run struct {
	Config int
	Seed   int64
	X, Y   float64
}

// Matched is a curve read at one level of x.
type Matched struct {
	Level float64
	// Reached is whether the seed-mean x of the curve's configurations
	// brackets Level; without it Seeds and Values are empty.
	Reached bool
	Seeds   []int64   // in increasing order
	Values  []float64 // y interpolated on each seed's curve
	Summary Summary   // of Values
}

// ReadAt reads a curve traced seed by seed at level. Each seed's runs
// form its own piecewise-linear curve (Interpolate); the curve reaches
// level when the seed-mean x of its configurations brackets it, and a
// seed whose own runs end just short of level (they scatter around the
// mean) reads its nearest run rather than dropping out.
func ReadAt(runs []Run, level float64) Matched {
	m := Matched{Level: level}
	sum, n := map[int]float64{}, map[int]int{}
	xs, ys := map[int64][]float64{}, map[int64][]float64{}
	for _, r := range runs {
		if !isFinite(r.X) || !isFinite(r.Y) {
			continue
		}
		sum[r.Config] += r.X
		n[r.Config]++
		if _, ok := xs[r.Seed]; !ok {
			m.Seeds = append(m.Seeds, r.Seed)
		}
		xs[r.Seed] = append(xs[r.Seed], r.X)
		ys[r.Seed] = append(ys[r.Seed], r.Y)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for c, s := range sum {
		mean := s / float64(n[c])
		lo, hi = min(lo, mean), max(hi, mean)
	}
	if !(lo <= level && level <= hi) {
		m.Seeds = nil
		m.Summary = Summarize(nil)
		return m
	}
	m.Reached = true
	slices.Sort(m.Seeds)
	for _, s := range m.Seeds {
		x := min(max(level, slices.Min(xs[s])), slices.Max(xs[s]))
		v, _ := Interpolate(xs[s], ys[s], x)
		m.Values = append(m.Values, v)
	}
	m.Summary = Summarize(m.Values)
	return m
}
