package plots

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"

	"peftbench/analysis"
	"peftbench/configs"
	"peftbench/results"
)

// tunedSection is the report's section for a tune sweep ([protocol] kind
// = "tune", tune.json in its folder): per task, the values each group
// chose on validation, its validation score, and the test results of the
// choice over the test seeds (mean, 95% CI drawn as a bar on the task's
// common scale, n). Empty for a plain sweep.
func tunedSection(d *Data) template.HTML {
	rec, err := results.ReadTune(d.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		return template.HTML(`<p class="warn">` + template.HTMLEscapeString(err.Error()) + `</p>`)
	}
	trials := make(map[string]*results.TrialRow, len(d.Trials))
	for i := range d.Trials {
		trials[d.Trials[i].TrialID] = &d.Trials[i]
	}
	rows := analysis.Tuned(rec, trials, configs.TargetMetric.Value)
	v := tunedView{Metric: rec.Metric, Direction: rec.Direction, Axes: rec.Axes, TuneSeeds: len(rec.TuneSeeds),
		TestSeeds: fmt.Sprint(rec.TestSeeds)}
	for _, r := range rows {
		if len(v.Tasks) == 0 || v.Tasks[len(v.Tasks)-1].Name != r.Task {
			v.Tasks = append(v.Tasks, tunedTask{Name: r.Task})
		}
		t := &v.Tasks[len(v.Tasks)-1]
		tr := tunedRow{Method: r.Method, Rank: "–", Points: r.Points, Note: r.Note, N: fmt.Sprintf("%d/%d", r.Test.N, r.TestTrials)}
		if r.Rank > 0 {
			tr.Rank = fmt.Sprint(r.Rank)
		}
		for _, a := range rec.Axes {
			if x, ok := r.Values[a]; ok {
				tr.Values = append(tr.Values, fmt.Sprint(x))
			} else {
				tr.Values = append(tr.Values, "–")
			}
		}
		if r.Val != nil {
			tr.Val = fmtNum(*r.Val)
		}
		if r.Test.N > 0 {
			lo, hi := ci(r.Test)
			tr.Test = fmtNum(r.Test.Mean)
			tr.CI = fmt.Sprintf("[%.4g, %.4g]", lo, hi)
			tr.lo, tr.mean, tr.hi = lo, r.Test.Mean, hi
		}
		t.Rows = append(t.Rows, tr)
	}
	for i := range v.Tasks {
		scaleBars(v.Tasks[i].Rows)
	}
	var b bytes.Buffer
	if err := tunedTemplate.Execute(&b, v); err != nil {
		return template.HTML(`<p class="warn">` + template.HTMLEscapeString(err.Error()) + `</p>`)
	}
	return template.HTML(b.String())
}

type tunedView struct {
	Metric, Direction, TestSeeds string
	Axes                         []string
	TuneSeeds                    int
	Tasks                        []tunedTask
}

type tunedTask struct {
	Name string
	Rows []tunedRow
}

type tunedRow struct {
	Method, Rank     string
	Values           []string
	Points           int
	Val, Test, CI, N string
	Note             string
	Bar              template.CSS // the CI bar's position, on the task's scale
	Dot              template.CSS // the mean's
	lo, mean, hi     float64
}

// scaleBars places each row's CI bar and mean on the common scale of the
// task's intervals.
func scaleBars(rows []tunedRow) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		if r.Test != "" {
			lo, hi = math.Min(lo, r.lo), math.Max(hi, r.hi)
		}
	}
	if !(hi > lo) {
		hi, lo = lo+1, lo-1
	}
	pos := func(x float64) float64 { return 100 * (x - lo) / (hi - lo) }
	for i := range rows {
		r := &rows[i]
		if r.Test == "" {
			continue
		}
		r.Bar = template.CSS(fmt.Sprintf("left:%.1f%%;width:%.1f%%", pos(r.lo), math.Max(pos(r.hi)-pos(r.lo), 0.5)))
		r.Dot = template.CSS(fmt.Sprintf("left:%.1f%%", pos(r.mean)))
	}
}

var tunedTemplate = template.Must(template.New("tuned").Parse(`<h2 id="tuned">Tuned comparison</h2>
<p>Each configuration group's {{range $i, $a := .Axes}}{{if $i}}, {{end}}{{$a}}{{end}} chosen on validation ({{.Metric}}, {{.Direction}}, mean over {{.TuneSeeds}} tune seed(s)); the choice run on test seeds {{.TestSeeds}}: target metric, mean and 95% CI over the test seeds (the bar, on a scale common to the task).</p>
{{range .Tasks}}<h3>Task {{.Name}}</h3>
<table class="tuned">
<tr><th class="l">method</th><th>rank</th>{{range $.Axes}}<th>{{.}}</th>{{end}}<th>points</th><th>val {{$.Metric}}</th><th>test target metric</th><th>95% CI</th><th class="l" style="min-width:200px">CI</th><th>n</th></tr>
{{range .Rows}}<tr><td class="l">{{.Method}}</td><td>{{.Rank}}</td>{{range .Values}}<td>{{.}}</td>{{end}}<td>{{.Points}}</td>{{if .Val}}<td>{{.Val}}</td><td>{{.Test}}</td><td>{{.CI}}</td><td class="l"><div style="position:relative;height:10px;background:#f3f3f3">{{if .Test}}<div style="position:absolute;top:2px;height:6px;background:#7aa6d8;{{.Bar}}"></div><div style="position:absolute;top:0;width:2px;height:10px;background:#1f4e8c;{{.Dot}}"></div>{{end}}</div></td><td>{{.N}}</td>{{else}}<td class="l warn" colspan="4">{{.Note}}</td><td>{{.N}}</td>{{end}}</tr>
{{end}}</table>
{{end}}`))
