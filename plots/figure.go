package plots

import (
	"bytes"
	"fmt"
	"image/color"
	"image/png"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Formats are the file formats a figure can be written in.
var Formats = []string{"png", "svg", "pdf"}

// PNGDPI is the resolution of PNG output: enough for slides and the HTML
// report; papers should take the PDF or SVG.
const PNGDPI = 200

// Figure is one figure, laid out and ready to render in any format: a grid
// of panels sharing one legend, drawn above the panels so it never covers
// data.
type Figure struct {
	Name    string // file stem: kind, then task when per task ("metric-vs-rank-modarith")
	Kind    string // the figure kind, one of Kinds()
	Task    string // the task it shows; empty for figures across tasks
	Caption string // one sentence on what is drawn, for the report

	Width, Height vg.Length

	panels   []*plot.Plot
	cols     int
	legend   []legendEntry
	colorBar *plot.Plot // optional, drawn in a strip right of the panels
}

// legendEntry is one item of a figure's legend: any of a filled swatch, a
// line and a marker.
type legendEntry struct {
	name  string
	fill  color.Color
	line  *draw.LineStyle
	glyph *draw.GlyphStyle
}

func methodEntry(method string, withLine bool) legendEntry {
	return styleEntry(method, MethodStyle(method), withLine)
}

// styleEntry is a legend entry drawn in style s.
func styleEntry(name string, s Style, withLine bool) legendEntry {
	g := glyphStyle(s)
	e := legendEntry{name: name, glyph: &g}
	if withLine {
		l := lineStyle(s)
		e.line = &l
	}
	return e
}

// newFigure lays out panels in at most three columns: one column-width
// panel, or page-width for several.
func newFigure(kind, task, caption string, panels []*plot.Plot, legend []legendEntry) *Figure {
	f := &Figure{Kind: kind, Task: task, Caption: caption, panels: panels, legend: legend}
	f.Name = kind
	if task != "" {
		f.Name += "-" + task
	}
	n := len(panels)
	f.cols = min(n, 3)
	if n == 4 {
		f.cols = 2
	}
	rows := (n + f.cols - 1) / f.cols
	f.Width = columnWidth
	if f.cols > 1 {
		f.Width = pageWidth
	}
	f.Height = vg.Length(rows)*panelHeight + f.legendHeight(f.Width)
	return f
}

const (
	legendThumb = 14 // pt
	legendGap   = 3  // pt, between thumbnail and text
	legendSep   = 9  // pt, between entries
	legendPad   = 3  // pt, around the legend strip
)

// legendRows wraps the legend entries into rows that fit width.
func (f *Figure) legendRows(width vg.Length) [][]legendEntry {
	ts := textStyle(legendSize)
	var rows [][]legendEntry
	var row []legendEntry
	var x vg.Length
	avail := width - 2*vg.Points(legendPad)
	for _, e := range f.legend {
		w := vg.Points(legendThumb+legendGap) + ts.Width(e.name)
		if len(row) > 0 && x+vg.Points(legendSep)+w > avail {
			rows = append(rows, row)
			row, x = nil, 0
		}
		if len(row) > 0 {
			x += vg.Points(legendSep)
		}
		row = append(row, e)
		x += w
	}
	if len(row) > 0 {
		rows = append(rows, row)
	}
	return rows
}

func (f *Figure) legendHeight(width vg.Length) vg.Length {
	n := len(f.legendRows(width))
	if n == 0 {
		return 0
	}
	return vg.Length(n)*legendSize*1.45 + 2*vg.Points(legendPad)
}

// Draw draws the figure onto c.
func (f *Figure) Draw(c draw.Canvas) {
	c.FillPolygon(color.White, []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
	width := c.Max.X - c.Min.X
	lh := f.legendHeight(width)
	f.drawLegend(c, width)

	body := draw.Crop(c, 0, 0, 0, -lh)
	if f.colorBar != nil {
		bar := draw.Crop(body, width-vg.Points(54), -vg.Points(8), vg.Points(30), -vg.Points(18))
		f.colorBar.Draw(bar)
		body = draw.Crop(body, 0, -vg.Points(58), 0, 0)
	}
	rows := (len(f.panels) + f.cols - 1) / f.cols
	grid := make([][]*plot.Plot, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, f.cols)
		for col := range f.cols {
			if i := r*f.cols + col; i < len(f.panels) {
				grid[r][col] = f.panels[i]
			}
		}
	}
	tiles := draw.Tiles{Rows: rows, Cols: f.cols, PadX: vg.Points(10), PadY: vg.Points(8),
		PadTop: vg.Points(2), PadBottom: vg.Points(2), PadLeft: vg.Points(2), PadRight: vg.Points(6)}
	canvases := plot.Align(grid, tiles, body)
	for r := range grid {
		for col, p := range grid[r] {
			if p != nil {
				p.Draw(canvases[r][col])
			}
		}
	}
}

func (f *Figure) drawLegend(c draw.Canvas, width vg.Length) {
	ts := textStyle(legendSize)
	ts.YAlign = draw.YCenter
	rowH := legendSize * 1.45
	y := c.Max.Y - vg.Points(legendPad) - rowH/2
	for _, row := range f.legendRows(width) {
		// Centre each row.
		var w vg.Length
		for i, e := range row {
			if i > 0 {
				w += vg.Points(legendSep)
			}
			w += vg.Points(legendThumb+legendGap) + ts.Width(e.name)
		}
		x := c.Min.X + (width-w)/2
		for _, e := range row {
			th := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
				Min: vg.Point{X: x, Y: y - rowH*0.3},
				Max: vg.Point{X: x + vg.Points(legendThumb), Y: y + rowH*0.3},
			}}
			if e.fill != nil {
				th.FillPolygon(e.fill, []vg.Point{th.Min, {X: th.Max.X, Y: th.Min.Y}, th.Max, {X: th.Min.X, Y: th.Max.Y}})
			}
			if e.line != nil {
				th.StrokeLine2(*e.line, th.Min.X, y, th.Max.X, y)
			}
			if e.glyph != nil {
				th.DrawGlyphNoClip(*e.glyph, vg.Point{X: (th.Min.X + th.Max.X) / 2, Y: y})
			}
			x += vg.Points(legendThumb + legendGap)
			c.FillText(ts, vg.Point{X: x, Y: y}, e.name)
			x += ts.Width(e.name) + vg.Points(legendSep)
		}
		y -= rowH
	}
}

// Encode renders the figure in format, one of Formats.
func (f *Figure) Encode(format string) ([]byte, error) {
	return f.encode(format, PNGDPI)
}

func (f *Figure) encode(format string, dpi int) ([]byte, error) {
	var c vg.CanvasWriterTo
	switch format {
	case "png":
		c = fastPNG{vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(dpi))}
	case "svg":
		c = vgsvg.New(f.Width, f.Height)
	case "pdf":
		c = vgpdf.New(f.Width, f.Height)
	default:
		return nil, fmt.Errorf("plots: unknown format %q (known: png, svg, pdf)", format)
	}
	f.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("plots: %s.%s: %w", f.Name, format, err)
	}
	return buf.Bytes(), nil
}

// fastPNG encodes at zlib's fastest level: three times faster than the
// default for flat-colour plots, files about a third larger.
type fastPNG struct{ *vgimg.Canvas }

func (c fastPNG) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	err := enc.Encode(cw, c.Image())
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
