package plots

import (
	"hash/fnv"
	"image/color"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Okabe–Ito, the colour-blind-safe qualitative palette (Okabe & Ito 2008),
// without its yellow, which is unreadable as a line on white.
var (
	black         = color.RGBA{0x00, 0x00, 0x00, 0xff}
	orange        = color.RGBA{0xE6, 0x9F, 0x00, 0xff}
	skyBlue       = color.RGBA{0x56, 0xB4, 0xE9, 0xff}
	bluishGreen   = color.RGBA{0x00, 0x9E, 0x73, 0xff}
	blue          = color.RGBA{0x00, 0x72, 0xB2, 0xff}
	vermillion    = color.RGBA{0xD5, 0x5E, 0x00, 0xff}
	reddishPurple = color.RGBA{0xCC, 0x79, 0xA7, 0xff}
	grey          = color.RGBA{0x99, 0x99, 0x99, 0xff}

	okabeIto = []color.RGBA{orange, skyBlue, bluishGreen, blue, vermillion, reddishPurple}
)

// Style is how one method is drawn in every figure: colour, marker and dash
// pattern, so a method is recognisable across figures and in greyscale.
type Style struct {
	Color color.RGBA
	Glyph draw.GlyphDrawer
	Dash  []vg.Length
}

var (
	dashed  = []vg.Length{vg.Points(3), vg.Points(1.5)}
	dotted  = []vg.Length{vg.Points(1), vg.Points(1.5)}
	dashDot = []vg.Length{vg.Points(3), vg.Points(1.5), vg.Points(1), vg.Points(1.5)}
)

// knownMethods fixes the style of the methods this harness ships, in the
// order figures and tables list them. Colours repeat only with a different
// dash pattern and marker.
var knownMethods = []struct {
	name  string
	style Style
}{
	{"full", Style{black, draw.SquareGlyph{}, nil}},
	{"lora", Style{blue, draw.CircleGlyph{}, nil}},
	{"rslora", Style{vermillion, draw.TriangleGlyph{}, nil}},
	{"loraplus", Style{bluishGreen, draw.PyramidGlyph{}, nil}},
	{"lora-fa", Style{skyBlue, draw.BoxGlyph{}, nil}},
	{"dora", Style{reddishPurple, draw.RingGlyph{}, nil}},
	{"pissa", Style{orange, draw.CrossGlyph{}, nil}},
	{"olora", Style{blue, draw.PlusGlyph{}, dashed}},
	{"vera", Style{vermillion, draw.RingGlyph{}, dashed}},
	{"lora-xs", Style{bluishGreen, draw.SquareGlyph{}, dashed}},
	{"adalora", Style{orange, draw.TriangleGlyph{}, dashed}},
	{"lora-ga", Style{reddishPurple, draw.CircleGlyph{}, dashed}},
	// batch A: dotted, each (colour, marker) pair once
	{"loha", Style{orange, draw.CircleGlyph{}, dotted}},
	{"lokr", Style{skyBlue, draw.TriangleGlyph{}, dotted}},
	{"hira", Style{bluishGreen, draw.SquareGlyph{}, dotted}},
	{"oft", Style{blue, draw.PyramidGlyph{}, dotted}},
	{"boft", Style{vermillion, draw.RingGlyph{}, dotted}},
	{"hra", Style{reddishPurple, draw.BoxGlyph{}, dotted}},
	{"road", Style{orange, draw.CrossGlyph{}, dotted}},
	{"ia3", Style{skyBlue, draw.PlusGlyph{}, dotted}},
	{"miss", Style{bluishGreen, draw.CircleGlyph{}, dotted}},
	{"shira", Style{blue, draw.TriangleGlyph{}, dotted}},
	{"delora", Style{vermillion, draw.SquareGlyph{}, dotted}},
	{"fourierft", Style{reddishPurple, draw.PyramidGlyph{}, dotted}},
	{"c3a", Style{orange, draw.RingGlyph{}, dotted}},
	{"vblora", Style{skyBlue, draw.BoxGlyph{}, dotted}},
	{"randlora", Style{bluishGreen, draw.CrossGlyph{}, dotted}},
	{"gralora", Style{blue, draw.PlusGlyph{}, dotted}},
	{"ln-tuning", Style{vermillion, draw.CircleGlyph{}, dotted}},
	// batch B: dash-dot, each (colour, marker) pair once
	{"mora", Style{orange, draw.CircleGlyph{}, dashDot}},
	{"tied-lora", Style{skyBlue, draw.TriangleGlyph{}, dashDot}},
	{"singlora", Style{bluishGreen, draw.SquareGlyph{}, dashDot}},
	{"nola", Style{blue, draw.PyramidGlyph{}, dashDot}},
	{"dylora", Style{vermillion, draw.RingGlyph{}, dashDot}},
	{"melora", Style{reddishPurple, draw.BoxGlyph{}, dashDot}},
	{"moslora", Style{orange, draw.PlusGlyph{}, dashDot}},
	{"kradapter", Style{skyBlue, draw.CircleGlyph{}, dashDot}},
	{"loldu", Style{bluishGreen, draw.TriangleGlyph{}, dashDot}},
	{"svfit", Style{blue, draw.SquareGlyph{}, dashDot}},
	{"salt", Style{vermillion, draw.PyramidGlyph{}, dashDot}},
	{"lori", Style{reddishPurple, draw.RingGlyph{}, dashDot}},
	{"eva", Style{orange, draw.CrossGlyph{}, dashDot}},
	{"corda", Style{skyBlue, draw.PlusGlyph{}, dashDot}},
	{"lora-one", Style{bluishGreen, draw.CircleGlyph{}, dashDot}},
	{"lora-sb", Style{blue, draw.TriangleGlyph{}, dashDot}},
	{"galore", Style{vermillion, draw.SquareGlyph{}, dashDot}},
	{"flora", Style{reddishPurple, draw.PyramidGlyph{}, dashDot}},
	{"fira", Style{orange, draw.BoxGlyph{}, dashDot}},
	{"lora-pro", Style{skyBlue, draw.CrossGlyph{}, dashDot}},
	{"riemannian", Style{bluishGreen, draw.PlusGlyph{}, dashDot}},
	{"lisa", Style{blue, draw.CircleGlyph{}, dashDot}},
	{"cola", Style{vermillion, draw.TriangleGlyph{}, dashDot}},
	{"aflora", Style{reddishPurple, draw.SquareGlyph{}, dashDot}},
	{"coto", Style{orange, draw.RingGlyph{}, dashDot}},
	{"allora", Style{skyBlue, draw.BoxGlyph{}, dashDot}},
}

var fallbackGlyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PyramidGlyph{},
	draw.RingGlyph{}, draw.BoxGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
}

// MethodStyle returns the fixed style of a method. Methods outside the
// shipped ones get a style from a hash of their name: stable across runs
// and figures, though it may coincide with another method's colour.
func MethodStyle(method string) Style {
	for _, m := range knownMethods {
		if m.name == method {
			return m.style
		}
	}
	h := fnv.New32a()
	h.Write([]byte(method))
	v := h.Sum32()
	s := Style{
		Color: okabeIto[v%uint32(len(okabeIto))],
		Glyph: fallbackGlyphs[(v/7)%uint32(len(fallbackGlyphs))],
	}
	if (v/61)%2 == 1 {
		s.Dash = dashed
	}
	return s
}

// methodLess orders methods: the shipped ones in table order, then others
// by name.
func methodLess(a, b string) int {
	ia, ib := methodIndex(a), methodIndex(b)
	if ia != ib {
		return ia - ib
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func methodIndex(m string) int {
	for i, k := range knownMethods {
		if k.name == m {
			return i
		}
	}
	return len(knownMethods)
}

func sortMethods(ms []string) { slices.SortFunc(ms, methodLess) }

// Paper geometry: one column is 3.5 in wide; text is 8–9 pt at that width.
const (
	columnWidth = 3.5 * vg.Inch
	pageWidth   = 7.0 * vg.Inch
	panelHeight = 2.3 * vg.Inch
)

var (
	sansFont   = font.Font{Typeface: "Liberation", Variant: "Sans"}
	titleSize  = vg.Points(9)
	labelSize  = vg.Points(8)
	tickSize   = vg.Points(7)
	legendSize = vg.Points(7.5)
	lineWidth  = vg.Points(1.2)
	glyphSize  = vg.Points(2.2)
)

// newPanel returns a plot in the paper style: sans-serif text at paper
// sizes, thin axes, short ticks and a light grid.
func newPanel(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sansFont, titleSize)
	p.Title.Padding = vg.Points(3)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sansFont, labelSize)
		a.Tick.Label.Font = font.From(sansFont, tickSize)
		a.Tick.Length = vg.Points(3)
		a.Padding = vg.Points(2)
		a.LineStyle.Width = vg.Points(0.6)
		a.Tick.LineStyle.Width = vg.Points(0.6)
		a.Label.Padding = vg.Points(2)
	}
	p.X.Tick.Marker = plainTicks{}
	p.Y.Tick.Marker = plainTicks{}
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Add(newGrid())
	return p
}

func lineStyle(s Style) draw.LineStyle {
	return draw.LineStyle{Color: s.Color, Width: lineWidth, Dashes: s.Dash}
}

func glyphStyle(s Style) draw.GlyphStyle {
	return draw.GlyphStyle{Color: s.Color, Radius: glyphSize, Shape: s.Glyph}
}

// translucent returns c at the given opacity, for CI bands.
func translucent(c color.RGBA, alpha float64) color.Color {
	a := uint8(alpha * 255)
	f := float64(a) / 255
	return color.RGBA{uint8(float64(c.R) * f), uint8(float64(c.G) * f), uint8(float64(c.B) * f), a}
}

func textStyle(size vg.Length) draw.TextStyle {
	return draw.TextStyle{Color: black, Font: font.From(sansFont, size), Handler: plot.DefaultTextHandler}
}

// plainTicks are gonum's default ticks labelled without padding zeros
// (250, not 250.00).
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ts {
		if t.Label != "" {
			ts[i].Label = strconv.FormatFloat(t.Value, 'g', 4, 64)
		}
	}
	return ts
}
