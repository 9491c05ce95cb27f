package regress

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Formats accepted by Write.
var Formats = []string{"text", "markdown", "json"}

// Write writes the report in format: "text" (an aligned benchstat-style
// table), "markdown" (for a CI job summary: the regressions and changes,
// then the full table folded away) or "json".
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "text":
		return r.WriteText(w)
	case "markdown", "md":
		return r.WriteMarkdown(w)
	case "json":
		return r.WriteJSON(w)
	}
	return fmt.Errorf("regress: unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// cells are a row's table cells: name, metric, baseline, current, delta,
// p (with the sample sizes), verdict.
func (row *Row) cells() [7]string {
	base, cur := row.BaseText, row.CurText
	if base == "" {
		base = summary(row.Base)
	}
	if cur == "" {
		cur = summary(row.Cur)
	}
	delta, p := "", ""
	if row.BaseText == "" {
		delta = percent(row.Comparison.Delta)
		p = fmt.Sprintf("n=%d+%d", len(row.Base), len(row.Cur))
		if !math.IsNaN(row.Comparison.P) {
			p = fmt.Sprintf("p=%.3f %s", row.Comparison.P, p)
		}
	}
	return [7]string{row.Name, row.Metric, base, cur, delta, p, string(row.Verdict)}
}

var header = [7]string{"name", "metric", "baseline", "current", "delta", "p", "verdict"}

// summary is the median of xs with the largest relative deviation from it,
// as benchstat prints a sample.
func summary(xs []float64) string {
	if len(xs) == 0 {
		return "—"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if len(s) == 1 {
		return fmt.Sprintf("%.4g", med)
	}
	dev := max(math.Abs(s[0]-med), math.Abs(s[len(s)-1]-med))
	if med == 0 {
		return fmt.Sprintf("%.4g ±%.2g", med, dev)
	}
	return fmt.Sprintf("%.4g ±%.0f%%", med, 100*dev/math.Abs(med))
}

func percent(d float64) string {
	switch {
	case math.IsNaN(d):
		return "—"
	case math.IsInf(d, 1):
		return "+∞%"
	case math.IsInf(d, -1):
		return "−∞%"
	}
	return fmt.Sprintf("%+.1f%%", 100*d)
}

func (r *Report) headline() string {
	what := "seeds"
	if r.Kind == "perf" {
		what = "runs"
	}
	n := len(r.Regressions())
	verdict := "no regressions"
	switch n {
	case 0:
	case 1:
		verdict = "1 regression"
	default:
		verdict = fmt.Sprintf("%d regressions", n)
	}
	return fmt.Sprintf("%s in %d rows (Mann–Whitney U over %s, α = %g, min effect %g%%)",
		verdict, len(r.Rows), what, r.Alpha, 100*r.MinEffect)
}

// WriteText writes the report as an aligned table, a headline and the
// warnings.
func (r *Report) WriteText(w io.Writer) error {
	if r.Baseline != "" || r.Current != "" {
		fmt.Fprintf(w, "baseline: %s\ncurrent:  %s\n\n", r.Baseline, r.Current)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header[:], "\t"))
	for i := range r.Rows {
		c := r.Rows[i].cells()
		fmt.Fprintln(tw, strings.Join(c[:], "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s\n", r.headline())
	for _, s := range r.warningLines() {
		fmt.Fprintf(w, "warning: %s\n", s)
	}
	return nil
}

// warningLines are the report's warnings, then each row's.
func (r *Report) warningLines() []string {
	lines := slices.Clone(r.Warnings)
	for _, row := range r.Rows {
		for _, w := range row.Warnings {
			if strings.HasPrefix(w, "too few seeds") || strings.HasPrefix(w, "the test cannot reach") {
				continue // summarised in the report's warnings
			}
			lines = append(lines, row.Name+" "+row.Metric+": "+w)
		}
	}
	return lines
}

// WriteMarkdown writes the report for a CI job summary: a headline, the
// rows that are not "~", the whole table in a folded section, and the
// warnings.
func (r *Report) WriteMarkdown(w io.Writer) error {
	title := "Regression check"
	if r.Kind == "perf" {
		title = "Engine speed check"
	}
	icon := "✅"
	if len(r.Regressions()) > 0 {
		icon = "❌"
	}
	fmt.Fprintf(w, "## %s %s\n\n%s.\n\n", icon, title, r.headline())
	if r.Baseline != "" || r.Current != "" {
		fmt.Fprintf(w, "Baseline `%s`, current `%s`.\n\n", r.Baseline, r.Current)
	}
	var notable []int
	for i, row := range r.Rows {
		if row.Verdict != Same && row.Verdict != Insufficient {
			notable = append(notable, i)
		}
	}
	if len(notable) > 0 {
		fmt.Fprintf(w, "### Changes\n\n")
		r.markdownTable(w, notable)
		fmt.Fprintln(w)
	}
	all := make([]int, len(r.Rows))
	for i := range all {
		all[i] = i
	}
	fmt.Fprintf(w, "<details><summary>All %d rows</summary>\n\n", len(r.Rows))
	r.markdownTable(w, all)
	fmt.Fprintf(w, "\n</details>\n")
	if ws := r.warningLines(); len(ws) > 0 {
		fmt.Fprintf(w, "\n### Warnings\n\n")
		for _, s := range ws {
			fmt.Fprintf(w, "- %s\n", mdEscape(s))
		}
	}
	return nil
}

func (r *Report) markdownTable(w io.Writer, idx []int) {
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header[:], " | "), strings.Repeat("---|", len(header)))
	for _, i := range idx {
		c := r.Rows[i].cells()
		for j := range c {
			c[j] = mdEscape(c[j])
		}
		if r.Rows[i].Verdict.Fails() {
			c[6] = "**" + c[6] + "**"
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(c[:], " | "))
	}
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "\n", " ").Replace(s)
}

// jsonRow is a Row as WriteJSON encodes it; NaN and ±Inf become null.
type jsonRow struct {
	Name           string     `json:"name"`
	Task           string     `json:"task,omitempty"`
	Method         string     `json:"method,omitempty"`
	Rank           int64      `json:"rank,omitempty"`
	Metric         string     `json:"metric"`
	Unit           string     `json:"unit,omitempty"`
	HigherIsBetter bool       `json:"higher_is_better"`
	Base           []*float64 `json:"baseline"`
	Cur            []*float64 `json:"current"`
	BaseText       string     `json:"baseline_status,omitempty"`
	CurText        string     `json:"current_status,omitempty"`
	BaseMedian     *float64   `json:"baseline_median"`
	CurMedian      *float64   `json:"current_median"`
	Delta          *float64   `json:"delta"`
	P              *float64   `json:"p"`
	Verdict        Verdict    `json:"verdict"`
	Fails          bool       `json:"fails"`
	Warnings       []string   `json:"warnings,omitempty"`
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	out := struct {
		Kind        string    `json:"kind"`
		Baseline    string    `json:"baseline,omitempty"`
		Current     string    `json:"current,omitempty"`
		Alpha       float64   `json:"alpha"`
		MinEffect   float64   `json:"min_effect"`
		Regressions int       `json:"regressions"`
		Rows        []jsonRow `json:"rows"`
		Warnings    []string  `json:"warnings,omitempty"`
	}{Kind: r.Kind, Baseline: r.Baseline, Current: r.Current, Alpha: r.Alpha, MinEffect: r.MinEffect,
		Regressions: len(r.Regressions()), Rows: []jsonRow{}, Warnings: r.Warnings}
	for _, row := range r.Rows {
		c := row.Comparison
		jr := jsonRow{Name: row.Name, Task: row.Task, Method: row.Method, Rank: row.Rank,
			Metric: row.Metric, Unit: row.Unit, HigherIsBetter: row.HigherIsBetter,
			Base: nonNil(row.Base), Cur: nonNil(row.Cur), BaseText: row.BaseText, CurText: row.CurText,
			Verdict: row.Verdict, Fails: row.Verdict.Fails(), Warnings: row.Warnings}
		if row.BaseText == "" {
			jr.BaseMedian, jr.CurMedian, jr.Delta, jr.P = finite(c.BaseMed), finite(c.CurMed), finite(c.Delta), finite(c.P)
		}
		out.Rows = append(out.Rows, jr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// nonNil returns xs for JSON: an empty array rather than null, and null
// for the non-finite values encoding/json rejects.
func nonNil(xs []float64) []*float64 {
	out := make([]*float64, len(xs))
	for i, x := range xs {
		out[i] = finite(x)
	}
	return out
}
