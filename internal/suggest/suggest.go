// Package suggest finds the names a mistyped name was most likely meant to
// be, for the "did you mean" part of errors about unknown methods, tasks,
// options, keys and commands.
package suggest

import (
	"fmt"
	"slices"
	"strings"
)

// Distance is the optimal-string-alignment (restricted Damerau–Levenshtein)
// distance between a and b in runes: insertions, deletions, substitutions
// and transpositions of adjacent runes — the commonest typo — each count
// one.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// Nearest returns the candidates closest to name, ignoring case, closest
// first (ties in candidate order), among those within max(2, len(name)/3)
// edits; at most three.
func Nearest(name string, candidates []string) []string {
	limit := max(2, len(name)/3)
	type cand struct {
		s string
		d int
	}
	var cs []cand
	for _, c := range candidates {
		if d := Distance(strings.ToLower(name), strings.ToLower(c)); d <= limit {
			cs = append(cs, cand{c, d})
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return a.d - b.d })
	var out []string
	for i := 0; i < len(cs) && i < 3; i++ {
		out = append(out, cs[i].s)
	}
	return out
}

// DidYouMean returns ` (did you mean "a" or "b"?)` for the Nearest
// candidates, or "" when none is close.
func DidYouMean(name string, candidates []string) string {
	near := Nearest(name, candidates)
	if len(near) == 0 {
		return ""
	}
	q := make([]string, len(near))
	for i, n := range near {
		q[i] = fmt.Sprintf("%q", n)
	}
	return " (did you mean " + strings.Join(q, " or ") + "?)"
}
