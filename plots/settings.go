package plots

import (
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"peftbench/configs"
	"peftbench/internal/numfmt"
)

// line is one drawn series of a method: its cells across ranks at one α
// rule and one value of every other setting that varies within a rank.
type line struct {
	method string
	label  string
	style  Style
	cells  []*Cell // in rank order
}

// alphaRule is how a series' α follows the rank: fixed (α = 8) or
// proportional (α = 2r).
type alphaRule struct {
	ratio bool
	v     float64
}

func (a alphaRule) match(c *Cell) bool {
	if a.ratio {
		return c.Rank > 0 && c.Alpha == a.v*float64(c.Rank)
	}
	return c.Alpha == a.v
}

func (a alphaRule) String() string {
	if a.ratio {
		if a.v == 1 {
			return "α=r"
		}
		return "α=" + numfmt.ShortFloat(a.v) + "r"
	}
	return "α=" + numfmt.ShortFloat(a.v)
}

// alphaRules covers a method's cells with the fewest α rules, each the
// fixed value or the multiple of r that most not yet covered ranks share.
// Cells without α, or a method with one α throughout, need no rule.
func alphaRules(cells []*Cell) []alphaRule {
	var cands []alphaRule
	for _, c := range cells {
		if math.IsNaN(c.Alpha) {
			return nil
		}
		for _, a := range []alphaRule{{false, c.Alpha}, {true, c.Alpha / float64(c.Rank)}} {
			if (a.ratio && c.Rank <= 0) || slices.Contains(cands, a) {
				continue
			}
			cands = append(cands, a)
		}
	}
	var rules []alphaRule
	covered := make([]bool, len(cells))
	for slices.Contains(covered, false) {
		best, bestN := -1, 0
		for i, a := range cands {
			var ranks []int64
			for j, c := range cells {
				if !covered[j] && a.match(c) && !slices.Contains(ranks, c.Rank) {
					ranks = append(ranks, c.Rank)
				}
			}
			if len(ranks) > bestN {
				best, bestN = i, len(ranks)
			}
		}
		if best < 0 {
			break
		}
		rules = append(rules, cands[best])
		for j, c := range cells {
			covered[j] = covered[j] || cands[best].match(c)
		}
	}
	if len(rules) == 1 && !rules[0].ratio {
		return nil // one fixed α: nothing to tell apart
	}
	return rules
}

// splitPaths are the config paths (other than α) whose value differs
// between two cells of the same rank: a swept axis of its own, as the
// learning rates of full fine-tuning. Cells without a rank count only
// when unranked is set.
func splitPaths(cells []*Cell, unranked bool) []string {
	var paths []string
	for i, a := range cells {
		for _, b := range cells[i+1:] {
			if a.Rank != b.Rank || (!unranked && !a.Ranked()) {
				continue
			}
			for _, p := range a.Pairs {
				if slices.Contains(b.Pairs, p) {
					continue
				}
				path, _, _ := strings.Cut(p, "=")
				if path != configs.AlphaPath && !slices.Contains(paths, path) {
					paths = append(paths, path)
				}
			}
		}
	}
	slices.Sort(paths)
	return paths
}

// lines splits cells into drawn series: per method, one per α rule and
// per value of every other setting that varies within a rank. Methods
// without a rank are split too when unranked is set (reference lines on a
// rank axis); otherwise their cells form one curve (full fine-tuning's
// learning rates in a scatter). Each line of a method after its first gets
// its own dash and marker.
func lines(cells []*Cell, unranked bool) []*line {
	var out []*line
	methods, groups := byMethod(cells)
	for _, m := range methods {
		cs := groups[m]
		rules := alphaRules(cs)
		type part struct {
			rule  string
			cells []*Cell
		}
		var parts []part
		if len(rules) == 0 {
			parts = append(parts, part{"", cs})
		}
		for _, r := range rules {
			var sel []*Cell
			for _, c := range cs {
				if r.match(c) {
					sel = append(sel, c)
				}
			}
			parts = append(parts, part{r.String(), sel})
		}
		k := 0
		for _, pt := range parts {
			paths := splitPaths(pt.cells, unranked)
			var keys [][]string
			byKey := map[string][]*Cell{}
			for _, c := range pt.cells {
				var key []string
				for _, p := range c.Pairs {
					path, _, _ := strings.Cut(p, "=")
					if slices.Contains(paths, path) {
						key = append(key, p)
					}
				}
				ks := strings.Join(key, "\x00")
				if _, ok := byKey[ks]; !ok {
					keys = append(keys, key)
				}
				byKey[ks] = append(byKey[ks], c)
			}
			slices.SortFunc(keys, configs.ComparePairs)
			for _, key := range keys {
				label := []string{m}
				if pt.rule != "" {
					label = append(label, pt.rule)
				}
				for _, p := range key {
					label = append(label, configs.ShortPair(p))
				}
				out = append(out, &line{method: m, label: strings.Join(label, " "),
					style: variantStyle(MethodStyle(m), k), cells: byKey[strings.Join(key, "\x00")]})
				k++
			}
		}
	}
	return out
}

// variantDashes tell a method's series apart; none is the plain dash of
// a reference line (referenceStyle).
var variantDashes = [][]vg.Length{
	{vg.Points(1), vg.Points(1.5)},
	{vg.Points(5), vg.Points(1.5), vg.Points(1), vg.Points(1.5)},
	{vg.Points(9), vg.Points(2.5)},
	{vg.Points(2), vg.Points(3)},
}

// variantStyle is the k-th series of one method: the method's colour with
// another dash pattern and marker, so series stay apart in greyscale.
func variantStyle(s Style, k int) Style {
	if k == 0 {
		return s
	}
	i := slices.IndexFunc(fallbackGlyphs, func(g draw.GlyphDrawer) bool { return g == s.Glyph })
	s.Glyph = fallbackGlyphs[(max(i, 0)+k)%len(fallbackGlyphs)]
	s.Dash = variantDashes[(k-1)%len(variantDashes)]
	return s
}
