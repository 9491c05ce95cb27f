package analysis

import (
	"errors"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// exactLimit is the largest n1+n2 for which MannWhitney enumerates the
// permutation distribution; above it the normal approximation with tie and
// continuity corrections is used.
const exactLimit = 60

// UTest is the result of a two-sided Mann–Whitney U test.
type UTest struct {
	U     float64 // U statistic of the first sample: #{(i,j): xᵢ > yⱼ} + ½#{ties}
	P     float64 // two-sided p-value
	Exact bool    // p from the exact permutation distribution
}

// MannWhitney tests whether x and y come from the same distribution against
// a shift either way. For n1+n2 ≤ 60 the p-value is exact: the permutation
// distribution of the rank sum, with mid-ranks for ties, is counted by
// dynamic programming, and p = min(1, 2·min(P(R ≤ r), P(R ≥ r))) as in
// scipy.stats.mannwhitneyu(method="exact") when there are no ties.
func MannWhitney(x, y []float64) (UTest, error) {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return UTest{}, errors.New("analysis: Mann–Whitney: empty sample")
	}
	for _, v := range slices.Concat(x, y) {
		if math.IsNaN(v) {
			return UTest{}, errors.New("analysis: Mann–Whitney: NaN in sample")
		}
	}
	ranks2, ties := doubledRanks(x, y)
	r1 := 0 // doubled rank sum of x
	for _, r := range ranks2[:n1] {
		r1 += r
	}
	u := float64(r1)/2 - float64(n1*(n1+1))/2
	n := n1 + n2
	if n <= exactLimit {
		lower, upper := rankSumTails(ranks2, n1, r1)
		return UTest{U: u, P: min(1, 2*min(lower, upper)), Exact: true}, nil
	}
	mu := float64(n1*n2) / 2
	tieSum := 0.0
	for _, t := range ties {
		tieSum += float64(t*t*t - t)
	}
	nf := float64(n)
	v := float64(n1*n2) / 12 * ((nf + 1) - tieSum/(nf*(nf-1)))
	if v <= 0 {
		return UTest{U: u, P: 1}, nil
	}
	z := (math.Abs(u-mu) - 0.5) / math.Sqrt(v)
	p := 2 * distuv.UnitNormal.Survival(max(z, 0))
	return UTest{U: u, P: min(p, 1)}, nil
}

// doubledRanks returns 2× the mid-ranks of x then y in the pooled sample
// (integers even with ties) and the sizes of the tie groups.
func doubledRanks(x, y []float64) ([]int, []int) {
	n := len(x) + len(y)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	val := func(i int) float64 {
		if i < len(x) {
			return x[i]
		}
		return y[i-len(x)]
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch va, vb := val(a), val(b); {
		case va < vb:
			return -1
		case va > vb:
			return 1
		}
		return 0
	})
	ranks := make([]int, n)
	var ties []int
	for i := 0; i < n; {
		j := i
		for j < n && val(idx[j]) == val(idx[i]) {
			j++
		}
		// positions i..j-1 hold ranks i+1..j; the mid-rank doubled is i+1+j.
		for k := i; k < j; k++ {
			ranks[idx[k]] = i + 1 + j
		}
		ties = append(ties, j-i)
		i = j
	}
	return ranks, ties
}

// rankSumTails returns P(R ≤ r1) and P(R ≥ r1) where R is the sum of n1
// doubled ranks drawn without replacement from ranks2, all subsets equally
// likely. ways[j][s] counts the j-subsets with sum s.
func rankSumTails(ranks2 []int, n1, r1 int) (lower, upper float64) {
	total := 0
	for _, r := range ranks2 {
		total += r
	}
	ways := make([][]float64, n1+1)
	for j := range ways {
		ways[j] = make([]float64, total+1)
	}
	ways[0][0] = 1
	for _, r := range ranks2 {
		for j := n1; j >= 1; j-- {
			prev, cur := ways[j-1], ways[j]
			for s := total; s >= r; s-- {
				cur[s] += prev[s-r]
			}
		}
	}
	all := 0.0
	for s, w := range ways[n1] {
		all += w
		if s <= r1 {
			lower += w
		}
		if s >= r1 {
			upper += w
		}
	}
	return lower / all, upper / all
}

// minExactP is the smallest two-sided p-value the exact test can give for
// samples of sizes n1 and n2 (no ties): 2/C(n1+n2, n1).
func minExactP(n1, n2 int) float64 {
	c := 1.0
	for i := 1; i <= n1; i++ {
		c = c * float64(n2+i) / float64(i)
	}
	return min(1, 2/c)
}
