package plots

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/sourcegraph/conc/pool"

	"peftbench/configs"
	"peftbench/results"
)

// ReportFile is the report's name inside a results folder.
const ReportFile = "report.html"

// WriteReport writes dir/report.html from the results in dir and returns
// its path. The file is self-contained: figures are inlined as PNG data
// URIs, and it links to the Parquet tables next to it by relative paths.
func WriteReport(dir string) (string, error) {
	d, err := Load(dir)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := Report(d, &buf); err != nil {
		return "", err
	}
	path := filepath.Join(dir, ReportFile)
	return path, writeFile(path, buf.Bytes())
}

// Report writes the HTML report of d to w: the sweep and its provenance,
// a results table per task (mean ± 95% CI half-width per method and rank,
// best per column marked), the forgetting-law fits with their CIs, every
// figure, the skipped figures, and the trials that failed with reasons.
func Report(d *Data, w io.Writer) error {
	figs, skips, err := Figures(d, nil)
	if err != nil {
		return err
	}
	imgs := make([]template.URL, len(figs))
	p := pool.New().WithErrors().WithMaxGoroutines(runtime.GOMAXPROCS(0))
	for i, f := range figs {
		p.Go(func() error {
			b, err := f.Encode("png")
			if err != nil {
				return err
			}
			imgs[i] = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b))
			return nil
		})
	}
	if err := p.Wait(); err != nil {
		return err
	}
	v := reportView{Dir: d.Dir, Manifest: d.Manifest, Warnings: d.Warnings, Skips: skips,
		Generated: time.Now().UTC().Format(time.RFC3339)}
	if d.Manifest != nil {
		v.Title = d.Manifest.Sweep
		if !d.Manifest.Started.IsZero() && !d.Manifest.Ended.IsZero() {
			v.Duration = d.Manifest.Ended.Sub(d.Manifest.Started).Round(time.Second).String()
		}
	}
	if v.Title == "" {
		v.Title = filepath.Base(d.Dir)
	}
	counts := map[string]int{}
	for _, t := range d.Trials {
		counts[t.Status]++
	}
	for _, s := range []string{results.StatusOK, results.StatusFailed, results.StatusDiverged, results.StatusTimeout, results.StatusCancelled} {
		if counts[s] > 0 {
			v.Counts = append(v.Counts, statusCount{s, counts[s]})
		}
	}
	v.Total = len(d.Trials)
	for _, f := range []string{results.TrialsFile, results.StepsFile, results.SpectraFile, results.ManifestFile} {
		if _, err := os.Stat(filepath.Join(d.Dir, f)); err == nil {
			v.Files = append(v.Files, f)
		}
	}
	for _, task := range d.Tasks() {
		tv := taskView{Name: task, Table: resultsTable(d, task)}
		for _, lf := range d.Fits(task) {
			tv.Fits = append(tv.Fits, fitView(lf))
		}
		for i, f := range figs {
			if f.Task == task {
				tv.Figures = append(tv.Figures, figView{f.Name, f.Caption, imgs[i], f.Width.Points() * 2})
			}
		}
		v.Tasks = append(v.Tasks, tv)
	}
	v.Failed = d.Failed()
	v.Tuned = tunedSection(d) // tuned.go: tune sweeps only
	v.Pareto = paretoOf(d)
	return reportTemplate.Execute(w, v)
}

type reportView struct {
	Title, Dir, Duration, Generated string
	Manifest                        *results.Manifest
	Warnings                        []string
	Counts                          []statusCount
	Total                           int
	Files                           []string
	Tasks                           []taskView
	Skips                           []Skip
	Failed                          []results.TrialRow
	Tuned                           template.HTML // a tune sweep's choices and test results
	Pareto                          *paretoView   // pareto.go
}

type statusCount struct {
	Status string
	N      int
}

type taskView struct {
	Name    string
	Table   tableView
	Fits    []fitRow
	Figures []figView
}

type figView struct {
	Name, Caption string
	Src           template.URL
	Width         float64 // CSS px: twice the size in points, for screens
}

type tableView struct {
	Headers []colHead
	Rows    []tableRow
}

type colHead struct {
	Name, Better string // Better is "↑" (higher is better) or "↓"
}

type tableRow struct {
	Method string
	Rank   string
	Seeds  int
	Cells  []tableCell
	Filter string // what the filter box matches (filterText)
}

type tableCell struct {
	Text, Title string
	Best        bool
}

// resultsTable is the task's table: one row per configuration (method,
// rank and the settings that tell a method's configurations of one rank
// apart), one column per metric any trial of the task reports.
func resultsTable(d *Data, task string) tableView {
	cells := d.Cells(task)
	ms := []Metric{TargetMetric, TargetLoss, Forgetting, RetainMetric}
	if es := d.epsilons(task); len(es) > 0 {
		ms = append(ms, IntruderMetric(es[nearest(es, 0.5)]))
	}
	ms = append(ms, RefusalRetention, TrainableParams, WallSeconds)
	var t tableView
	var used []Metric
	for _, m := range ms {
		if slices.ContainsFunc(cells, func(c *Cell) bool { return c.Has(m) }) {
			used = append(used, m)
			h := colHead{m.Short, "↓"}
			if m.Higher {
				h.Better = "↑"
			}
			t.Headers = append(t.Headers, h)
		}
	}
	means := make([][]float64, len(cells))
	for i, c := range cells {
		row := tableRow{Method: c.Method, Rank: "–", Seeds: len(c.Trials), Filter: filterText(c)}
		for _, p := range c.Settings {
			row.Method += " " + configs.ShortPair(p)
		}
		if c.Ranked() {
			row.Rank = fmt.Sprint(c.Rank)
		}
		for _, m := range used {
			s := c.Summary(m)
			means[i] = append(means[i], s.Mean)
			cell := tableCell{Text: "–"}
			if s.N > 0 {
				lo, hi := ci(s)
				cell.Text = fmtNum(s.Mean)
				if h := (hi - lo) / 2; s.N > 1 && h > 0 {
					cell.Text += " ± " + strconv.FormatFloat(h, 'g', 2, 64)
				}
				cell.Title = ciTitle(s, lo, hi)
			}
			row.Cells = append(row.Cells, cell)
		}
		t.Rows = append(t.Rows, row)
	}
	// Best per column; trainable parameters and wall time are costs, but
	// marking the cheapest is still useful.
	for j, m := range used {
		best := -1
		for i := range cells {
			x := means[i][j]
			if math.IsNaN(x) {
				continue
			}
			if best < 0 || (m.Higher && x > means[best][j]) || (!m.Higher && x < means[best][j]) {
				best = i
			}
		}
		if best >= 0 {
			t.Rows[best].Cells[j].Best = true
		}
	}
	return t
}

func fmtNum(x float64) string {
	a := math.Abs(x)
	switch {
	case a >= 1e4:
		return siFormat(x)
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a == 0:
		return "0"
	case a < 1e-3:
		return fmt.Sprintf("%.2e", x)
	}
	return fmt.Sprintf("%.3g", x)
}

type fitRow struct {
	Name, Formula, Source string
	Params                []string
	R2                    string
	N                     int
	Err                   string
	Warnings              []string
	Degenerate            string // why the fit is no law (analysis.Fit.Accept)
}

func fitView(lf *LawFit) fitRow {
	r := fitRow{Name: lf.Name, Source: lf.Source}
	if lf.Fit == nil {
		r.Err = fmt.Sprint(lf.Err)
		return r
	}
	r.Formula = lf.Fit.Formula
	for i, p := range lf.Fit.Params {
		if g, ok := greek[p]; ok {
			p = g
		}
		r.Params = append(r.Params, p+" = "+fmtCI(lf.Fit.Values[i], lf.Fit.CILo[i], lf.Fit.CIHi[i]))
	}
	r.R2 = fmt.Sprintf("%.3f", lf.Fit.R2)
	r.N = lf.Fit.N
	r.Warnings = lf.Fit.Warnings
	if lf.Degenerate != nil {
		r.Degenerate = lf.Degenerate.Error() + ": not drawn, as bench fit refuses it"
	}
	return r
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}).Parse(reportHTML))

const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} — peftbench report</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f5f5f5}td.l,th.l{text-align:left}td.best{font-weight:bold;background:#e8f3ec}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:13px;color:#444;max-width:800px}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:12px}.warn{color:#8a4b00}code{font-size:90%}
.controls label{margin-right:1em}#pareto-svg{max-width:100%;height:auto;border:1px solid #eee}.legend span{margin-right:1em;font-size:13px;white-space:nowrap}.note{font-size:13px;color:#444}
dl.prov{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dl.prov dt{font-weight:bold}dl.prov dd{margin:0}
</style>
</head>
<body data-figures="pending">
<h1>{{.Title}}</h1>
{{with .Manifest}}{{if .Description}}<p>{{.Description}}</p>{{end}}{{end}}
<p>{{.Total}} trials:{{range .Counts}} {{.N}} {{.Status}};{{end}}
Tables: {{range .Files}}<a href="{{.}}">{{.}}</a> {{end}}</p>
{{range .Warnings}}<p class="warn">Note: {{.}}</p>{{end}}

<h2>Provenance</h2>
{{with .Manifest}}<dl class="prov">
<dt>sweep</dt><dd>{{.Sweep}}</dd>
<dt>sweep file</dt><dd><code>{{.SweepFile}}</code> (hash <code>{{.SourceHash}}</code>)</dd>
<dt>git commit</dt><dd><code>{{.GitCommit}}</code></dd>
<dt>harness</dt><dd>{{.HarnessVersion}}, {{.GoVersion}}</dd>
<dt>host</dt><dd>{{.Host}}</dd>
<dt>started</dt><dd>{{time .Started}}</dd>
<dt>ended</dt><dd>{{time .Ended}}{{if $.Duration}} ({{$.Duration}}){{end}}</dd>
</dl>
{{if .SweepSource}}<details><summary>Sweep file</summary><pre>{{.SweepSource}}</pre></details>{{end}}
{{else}}<p class="warn">No manifest.json: provenance unknown.</p>{{end}}
<p>Report generated {{.Generated}} from <code>{{.Dir}}</code>. Means over seeds ± half the width of the 95% CI of the mean: the Student-t interval below 5 seeds (the bootstrap's is too narrow there), the percentile bootstrap's from 5 (hover a cell for both intervals); the best value per column is highlighted (↑ higher is better, ↓ lower).</p>

{{.Tuned}}
{{template "pareto" .Pareto}}
{{range .Tasks}}
<h2 id="task-{{.Name}}">Task {{.Name}}</h2>
<h3>Results</h3>
<table>
<tr><th class="l">method</th><th>rank</th><th>seeds</th>{{range .Table.Headers}}<th>{{.Name}} {{.Better}}</th>{{end}}</tr>
{{range .Table.Rows}}<tr data-filter="{{.Filter}}"><td class="l">{{.Method}}</td><td>{{.Rank}}</td><td>{{.Seeds}}</td>{{range .Cells}}<td{{if .Best}} class="best"{{end}} title="{{.Title}}">{{.Text}}</td>{{end}}</tr>
{{end}}</table>
{{if .Fits}}<h3>Forgetting laws</h3>
<table>
<tr><th class="l">against</th><th class="l">law</th><th class="l">parameters (95% CI)</th><th>R²</th><th>n</th><th class="l">data</th></tr>
{{range .Fits}}<tr><td class="l">{{.Name}}</td>{{if .Err}}<td class="l warn" colspan="4">no fit: {{.Err}}</td>{{else}}<td class="l">{{.Formula}}</td><td class="l">{{range $i, $p := .Params}}{{if $i}}<br>{{end}}{{$p}}{{end}}{{range .Warnings}}<br><span class="warn">{{.}}</span>{{end}}{{with .Degenerate}}<br><span class="warn degenerate">{{.}}</span>{{end}}</td><td>{{.R2}}</td><td>{{.N}}</td>{{end}}<td class="l">{{.Source}}</td></tr>
{{end}}</table>{{end}}
{{range .Figures}}<figure id="fig-{{.Name}}"><img src="{{.Src}}" alt="{{.Name}}" width="{{printf "%.0f" .Width}}"><figcaption><b>{{.Name}}</b>: {{.Caption}}</figcaption></figure>
{{end}}
{{end}}
{{if .Skips}}<h2>Figures not drawn</h2><ul>{{range .Skips}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>Failed trials</h2>
{{if .Failed}}<table>
<tr><th class="l">trial</th><th class="l">task</th><th class="l">method</th><th>rank</th><th>seed</th><th class="l">status</th><th>attempts</th><th>diverged at</th><th class="l">reason</th></tr>
{{range .Failed}}<tr><td class="l"><code>{{.TrialID}}</code></td><td class="l">{{.Task}}</td><td class="l">{{.Method}}</td><td>{{.Rank}}</td><td>{{.Seed}}</td><td class="l">{{.Status}}</td><td>{{.Attempts}}</td><td>{{if eq .Status "diverged"}}step {{.DivergedStep}}{{end}}</td><td class="l">{{.Error}}</td></tr>
{{end}}</table>{{else}}<p>None: every trial finished ok.</p>{{end}}
<script>
(function () {
  var errors = 0;
  window.addEventListener("error", function () { errors++; }, true);
  window.addEventListener("load", function () {
    var imgs = document.images, ok = 0;
    for (var i = 0; i < imgs.length; i++) {
      if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
    }
    document.body.setAttribute("data-figures", ok + "/" + imgs.length + (errors ? " errors=" + errors : ""));
  });
})();
</script>
</body>
</html>`
