package plots

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

func init() {
	register(kind{order: 50, name: "maxcos", summary: "heatmap of max |cos| between tuned and base singular vectors", build: maxCos})
}

// maxCos draws, per method and rank (rows) and tuned singular direction j
// (columns), max_i |cos(u_j, u⁰_i)| averaged over layers and seeds: the
// quantity intruder detection thresholds. spectra.parquet keeps only the
// maximum per tuned vector, not the full cosine matrix, so this is the
// heatmap the table supports.
func maxCos(d *Data, task string) ([]*Figure, string) {
	rows := d.spectrumRows(task)
	if len(rows) == 0 {
		return nil, "no spectra recorded"
	}
	var labels []string
	var grid [][]float64
	k := 0
	for _, c := range d.Cells(task) {
		sum := map[int64]float64{}
		cnt := map[int64]int{}
		for _, t := range c.Trials {
			for _, r := range rows[t.TrialID] {
				if !math.IsNaN(r.MaxCos) {
					sum[r.Index] += r.MaxCos
					cnt[r.Index]++
				}
			}
		}
		if len(cnt) == 0 {
			continue
		}
		var row []float64
		for j := int64(0); ; j++ {
			n, ok := cnt[j]
			if !ok {
				break
			}
			row = append(row, sum[j]/float64(n))
		}
		k = max(k, len(row))
		labels = append(labels, c.Label())
		grid = append(grid, row)
	}
	if len(grid) == 0 || k == 0 {
		return nil, "no max |cos| values recorded"
	}
	cm := viridis()
	cm.SetMin(0)
	cm.SetMax(1)
	g := heatGrid{rows: grid, cols: k}
	hm := plotter.NewHeatMap(g, cm.Palette(256))
	hm.Min, hm.Max = 0, 1
	hm.NaN = grey
	p := newPanel(task, "tuned singular direction j", "")
	p.Add(hm)
	// Rows top to bottom in table order.
	rev := slices.Clone(labels)
	slices.Reverse(rev)
	p.NominalY(rev...)
	p.Y.Tick.Label.Font.Size = tickSize
	ticks := make(plot.ConstantTicks, k)
	for j := range k {
		ticks[j] = plot.Tick{Value: float64(j), Label: fmt.Sprint(j + 1)}
	}
	p.X.Tick.Marker = ticks
	bar := plot.New()
	bar.Add(&plotter.ColorBar{ColorMap: cm, Vertical: true})
	bar.HideX()
	bar.Y.Label.Text = "max |cos|"
	for _, a := range []*plot.Axis{&bar.Y} {
		a.Label.TextStyle.Font = p.X.Label.TextStyle.Font
		a.Tick.Label.Font = p.X.Tick.Label.Font
		a.Tick.Length = vg.Points(3)
		a.Padding = 0
	}
	f := newFigure("maxcos", task,
		fmt.Sprintf("%s: max over base singular vectors of |cos| with each top tuned singular vector j, mean over layers and seeds; dark cells (< ε) are intruder dimensions.", task),
		[]*plot.Plot{p}, nil)
	f.colorBar = bar
	f.Height = max(panelHeight, vg.Length(len(labels))*vg.Points(11)+vg.Points(60))
	return []*Figure{f}, ""
}

// heatGrid is a GridXYZ over rows (first row drawn at the top).
type heatGrid struct {
	rows [][]float64
	cols int
}

func (g heatGrid) Dims() (c, r int) { return g.cols, len(g.rows) }
func (g heatGrid) X(c int) float64  { return float64(c) }
func (g heatGrid) Y(r int) float64  { return float64(r) }
func (g heatGrid) Z(c, r int) float64 {
	row := g.rows[len(g.rows)-1-r]
	if c >= len(row) {
		return math.NaN()
	}
	return row[c]
}

// viridis is the perceptually uniform, colour-blind-safe map of matplotlib
// (van der Walt & Smith), from ten of its control points.
func viridis() palette.ColorMap {
	hex := []uint32{0x440154, 0x482878, 0x3E4A89, 0x31688E, 0x26828E, 0x1F9E89, 0x35B779, 0x6DCD59, 0xB4DE2C, 0xFDE725}
	cs := make([]color.Color, len(hex))
	for i, h := range hex {
		cs[i] = color.RGBA{uint8(h >> 16), uint8(h >> 8), uint8(h), 0xff}
	}
	cm, err := moreland.NewLuminance(cs)
	if err != nil {
		panic(err) // the control points have increasing luminance
	}
	return cm
}
