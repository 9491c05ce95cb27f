package plots

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"peftbench/analysis"
	"peftbench/results"
)

func init() {
	register(kind{order: 40, name: "spectrum", summary: "singular values of one layer, base vs tuned, intruders marked", build: spectrum})
}

// spectrumRows groups a task's spectra rows by trial, keeping successful
// trials only.
func (d *Data) spectrumRows(task string) map[string][]results.SpectrumRow {
	out := map[string][]results.SpectrumRow{}
	for _, r := range d.Spectra {
		t := d.Trial(r.TrialID)
		if t == nil || t.Task != task || t.Status != results.StatusOK {
			continue
		}
		out[r.TrialID] = append(out[r.TrialID], r)
	}
	return out
}

// flagEpsilons returns the thresholds of a trial's intruder flags: the
// trial's own intruder counts carry them in the same order; otherwise the
// analysis defaults when the count matches.
func flagEpsilons(t *results.TrialRow, n int) []float64 {
	if len(t.Intruders) == n {
		es := make([]float64, n)
		for i, c := range t.Intruders {
			es[i] = c.Epsilon
		}
		return es
	}
	if len(analysis.DefaultEpsilons) == n {
		return analysis.DefaultEpsilons
	}
	if n == 1 {
		return []float64{0.5}
	}
	return nil
}

// nearest returns the index of the value in es closest to v.
func nearest(es []float64, v float64) int {
	best := 0
	for i, e := range es {
		if math.Abs(e-v) < math.Abs(es[best]-v) {
			best = i
		}
	}
	return best
}

// spectrum draws one layer's singular values, base against tuned, one panel
// per method (its lowest rank, first seed), intruders at ε ≈ 0.5 ringed.
// The layer is the one with the most intruders, so the figure shows the
// effect where it is.
func spectrum(d *Data, task string) ([]*Figure, string) {
	rows := d.spectrumRows(task)
	if len(rows) == 0 {
		return nil, "no spectra recorded"
	}
	// Count intruders per layer at ε ≈ 0.5.
	flagged := map[string]int{}
	var layers []string
	for id, rs := range rows {
		t := d.Trial(id)
		for _, r := range rs {
			if !slices.Contains(layers, r.Layer) {
				layers = append(layers, r.Layer)
			}
			if es := flagEpsilons(t, len(r.Intruder)); es != nil && r.Intruder[nearest(es, 0.5)] {
				flagged[r.Layer]++
			}
		}
	}
	sort.Strings(layers)
	layer := layers[0]
	for _, l := range layers {
		if flagged[l] > flagged[layer] {
			layer = l
		}
	}
	var panels []*plot.Plot
	legend := []legendEntry{{name: "base W₀", line: &draw.LineStyle{Color: grey, Width: lineWidth},
		glyph: &draw.GlyphStyle{Color: grey, Radius: glyphSize, Shape: draw.CircleGlyph{}}}}
	eps := math.NaN()
	methods, groups := byMethod(d.Cells(task))
	for _, m := range methods {
		// Lowest rank with spectra; rank-less cells have rank 0 and come first.
		var t *results.TrialRow
		var cell *Cell
		for _, c := range groups[m] {
			for _, tr := range c.Trials {
				if len(rows[tr.TrialID]) > 0 && (t == nil || tr.Seed < t.Seed) {
					t, cell = tr, c
				}
			}
			if t != nil {
				break
			}
		}
		if t == nil {
			continue
		}
		var rs []results.SpectrumRow
		for _, r := range rows[t.TrialID] {
			if r.Layer == layer {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		slices.SortFunc(rs, func(a, b results.SpectrumRow) int { return int(a.Index - b.Index) })
		s := MethodStyle(m)
		p := newPanel(fmt.Sprintf("%s (seed %d)", cell.Label(), t.Seed), "singular direction j", "singular value σⱼ")
		base := make(plotter.XYs, len(rs))
		tuned := make(plotter.XYs, len(rs))
		var intr plotter.XYs
		for i, r := range rs {
			x := float64(r.Index + 1)
			base[i] = plotter.XY{X: x, Y: r.SigmaBase}
			tuned[i] = plotter.XY{X: x, Y: r.SigmaTuned}
			if es := flagEpsilons(t, len(r.Intruder)); es != nil {
				k := nearest(es, 0.5)
				eps = es[k]
				if r.Intruder[k] {
					intr = append(intr, tuned[i])
				}
			}
		}
		bl, bs, _ := plotter.NewLinePoints(base)
		bl.LineStyle = draw.LineStyle{Color: grey, Width: lineWidth}
		bs.GlyphStyle = draw.GlyphStyle{Color: grey, Radius: glyphSize, Shape: draw.CircleGlyph{}}
		tl, ts, _ := plotter.NewLinePoints(tuned)
		tl.LineStyle = lineStyle(s)
		ts.GlyphStyle = glyphStyle(s)
		p.Add(bl, bs, tl, ts)
		if len(intr) > 0 {
			sc, _ := plotter.NewScatter(intr)
			sc.GlyphStyle = intruderGlyph
			p.Add(sc)
		}
		p.Y.Min = 0
		panels = append(panels, p)
		legend = append(legend, methodEntry(m, true))
	}
	if len(panels) == 0 {
		return nil, "no spectra for any method"
	}
	if !math.IsNaN(eps) {
		g := intruderGlyph
		legend = append(legend, legendEntry{name: fmt.Sprintf("intruder (ε = %g)", eps), glyph: &g})
	}
	return []*Figure{newFigure("spectrum", task,
		fmt.Sprintf("%s: top singular values of layer %s, base W₀ (grey) against the tuned W, one panel per method at its lowest rank; rings mark intruder dimensions (max |cos| to every base singular vector < ε).", task, layer),
		panels, legend)}, ""
}

var intruderGlyph = draw.GlyphStyle{Color: black, Radius: vg.Points(4.5), Shape: draw.RingGlyph{}}
