package plots

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"peftbench/analysis"
	"peftbench/internal/numfmt"
)

// point is a mean with its 95% CI in x and y.
type point struct{ x, y, xlo, xhi, ylo, yhi float64 }

// points implements plotter's XYer, XErrorer and YErrorer.
type points []point

func (p points) Len() int                      { return len(p) }
func (p points) XY(i int) (x, y float64)       { return p[i].x, p[i].y }
func (p points) XError(i int) (lo, hi float64) { return p[i].x - p[i].xlo, p[i].xhi - p[i].x }
func (p points) YError(i int) (lo, hi float64) { return p[i].y - p[i].ylo, p[i].yhi - p[i].y }

// ci returns the summary's 95% interval (Student-t below
// analysis.SmallN seeds, else the bootstrap's), or the mean where the
// interval is undefined.
func ci(s analysis.Summary) (lo, hi float64) {
	lo, hi = s.Interval()
	if math.IsNaN(lo) || math.IsNaN(hi) {
		return s.Mean, s.Mean
	}
	return lo, hi
}

func newGrid() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical = draw.LineStyle{Color: color.Gray{0xe4}, Width: vg.Points(0.4)}
	g.Horizontal = g.Vertical
	return g
}

// addBandLine draws pts (sorted by x, at least two) as a line over a
// translucent band from ylo to yhi.
func addBandLine(p *plot.Plot, pts points, s Style) {
	band := make(plotter.XYs, 0, 2*len(pts))
	for _, q := range pts {
		band = append(band, plotter.XY{X: q.x, Y: q.ylo})
	}
	for i := len(pts) - 1; i >= 0; i-- {
		band = append(band, plotter.XY{X: pts[i].x, Y: pts[i].yhi})
	}
	poly, _ := plotter.NewPolygon(band)
	poly.Color = translucent(s.Color, 0.18)
	poly.LineStyle.Width = 0
	p.Add(poly)
	l, _ := plotter.NewLine(pts)
	l.LineStyle = lineStyle(s)
	p.Add(l)
}

// addSeries draws pts (sorted by x) as a line with markers and a
// translucent 95% CI band, or with error bars when there is one point.
func addSeries(p *plot.Plot, pts points, s Style) {
	if len(pts) == 0 {
		return
	}
	if len(pts) > 1 {
		addBandLine(p, pts, s)
	} else {
		addYErr(p, pts, s)
	}
	sc, _ := plotter.NewScatter(pts)
	sc.GlyphStyle = glyphStyle(s)
	p.Add(sc)
}

func addYErr(p *plot.Plot, pts points, s Style) {
	e, _ := plotter.NewYErrorBars(pts)
	e.LineStyle = draw.LineStyle{Color: s.Color, Width: vg.Points(0.8)}
	e.CapWidth = vg.Points(3)
	p.Add(e)
}

func addXErr(p *plot.Plot, pts points, s Style) {
	e, _ := plotter.NewXErrorBars(pts)
	e.LineStyle = draw.LineStyle{Color: s.Color, Width: vg.Points(0.8)}
	e.CapWidth = vg.Points(3)
	p.Add(e)
}

// addMarkers draws pts with both error bars and markers, joined by a thin
// line in x order when join is set.
func addMarkers(p *plot.Plot, pts points, s Style, join bool) {
	if len(pts) == 0 {
		return
	}
	if join && len(pts) > 1 {
		l, _ := plotter.NewLine(pts)
		ls := lineStyle(s)
		ls.Width = vg.Points(0.7)
		l.LineStyle = ls
		p.Add(l)
	}
	addXErr(p, pts, s)
	addYErr(p, pts, s)
	sc, _ := plotter.NewScatter(pts)
	sc.GlyphStyle = glyphStyle(s)
	p.Add(sc)
}

// addReference draws a method without a rank (full fine-tuning) across
// [x0, x1] as a dashed horizontal line with its CI band: the style's dash
// pattern, or a plain dash when it has none.
func addReference(p *plot.Plot, q point, x0, x1 float64, s Style) {
	band := plotter.XYs{{X: x0, Y: q.ylo}, {X: x1, Y: q.ylo}, {X: x1, Y: q.yhi}, {X: x0, Y: q.yhi}}
	poly, _ := plotter.NewPolygon(band)
	poly.Color = translucent(s.Color, 0.12)
	poly.LineStyle.Width = 0
	p.Add(poly)
	l, _ := plotter.NewLine(plotter.XYs{{X: x0, Y: q.y}, {X: x1, Y: q.y}})
	l.LineStyle = lineStyle(referenceStyle(s))
	p.Add(l)
}

// addLabels writes small labels (ranks) next to points.
func addLabels(p *plot.Plot, pts points, labels []string) {
	xys := make(plotter.XYs, len(pts))
	for i, q := range pts {
		xys[i] = plotter.XY{X: q.x, Y: q.y}
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return
	}
	for i := range l.TextStyle {
		l.TextStyle[i] = text.Style{Color: color.Gray{0x44}, Font: font.From(sansFont, vg.Points(6)), Handler: plot.DefaultTextHandler}
	}
	l.Offset = vg.Point{X: vg.Points(3), Y: vg.Points(2)}
	p.Add(l)
}

// addFront draws a Pareto front through pts as a grey dashed step line.
func addFront(p *plot.Plot, front points) {
	if len(front) < 2 {
		return
	}
	l, _ := plotter.NewLine(front)
	l.LineStyle = draw.LineStyle{Color: grey, Width: vg.Points(0.9), Dashes: []vg.Length{vg.Points(2), vg.Points(2)}}
	p.Add(l)
}

var frontEntry = legendEntry{name: "Pareto front", line: &draw.LineStyle{Color: grey, Width: vg.Points(0.9), Dashes: []vg.Length{vg.Points(2), vg.Points(2)}}}

// paretoFront returns the points not dominated by any other, sorted by x:
// better means lower x and, if higherY, higher y (else lower y).
func paretoFront(pts points, higherY bool) points {
	s := slices.Clone(pts)
	slices.SortFunc(s, func(a, b point) int {
		if a.x != b.x {
			if a.x < b.x {
				return -1
			}
			return 1
		}
		if higherY {
			return cmpFloat(b.y, a.y)
		}
		return cmpFloat(a.y, b.y)
	})
	var front points
	for _, q := range s {
		if len(front) == 0 || (higherY && q.y > front[len(front)-1].y) || (!higherY && q.y < front[len(front)-1].y) {
			front = append(front, q)
		}
	}
	return front
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rankAxis makes x a log₂ axis with a tick at each rank.
func rankAxis(p *plot.Plot, ranks []int64) {
	p.X.Scale = plot.LogScale{}
	ticks := make(plot.ConstantTicks, len(ranks))
	for i, r := range ranks {
		ticks[i] = plot.Tick{Value: float64(r), Label: strconv.FormatInt(r, 10)}
	}
	p.X.Tick.Marker = ticks
	lo, hi := float64(ranks[0]), float64(ranks[len(ranks)-1])
	p.X.Min, p.X.Max = lo/1.25, hi*1.25
}

// logAxis makes a a log axis with readable ticks (1k, 10k, 1M).
func logAxis(a *plot.Axis) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = siLogTicks{}
}

// siLogTicks labels powers of ten with SI suffixes; over less than two
// decades it also labels 2× and 5×.
type siLogTicks struct{}

func (siLogTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= 0 || !(hi >= lo) {
		return nil
	}
	fine := math.Log10(hi)-math.Log10(lo) < 2
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := base * float64(m)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || (fine && (m == 2 || m == 5)) {
				t.Label = siFormat(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// siFormat writes v with a k/M/B suffix: 1500 → 1.5k; far from unity in
// short scientific form (1e-4, 1e12).
func siFormat(v float64) string {
	if a := math.Abs(v); a >= 1e12 || (a > 0 && a < 1e-2) {
		return numfmt.ShortFloat(v)
	}
	for _, u := range []struct {
		s string
		f float64
	}{{"B", 1e9}, {"M", 1e6}, {"k", 1e3}} {
		if math.Abs(v) >= u.f {
			return strconv.FormatFloat(v/u.f, 'g', 3, 64) + u.s
		}
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// logSpace returns n points spread evenly in log space over [lo, hi].
func logSpace(lo, hi float64, n int) []float64 {
	xs := make([]float64, n)
	a, b := math.Log(lo), math.Log(hi)
	for i := range xs {
		xs[i] = math.Exp(a + (b-a)*float64(i)/float64(n-1))
	}
	return xs
}

// fmtCI formats an estimate with its interval: 0.31 [0.22, 0.40].
func fmtCI(v, lo, hi float64) string {
	return fmt.Sprintf("%.3g [%.3g, %.3g]", v, lo, hi)
}

// referenceStyle is s for a reference line: dashed when s is solid.
func referenceStyle(s Style) Style {
	if s.Dash == nil {
		s.Dash = []vg.Length{vg.Points(4), vg.Points(2)}
	}
	return s
}
