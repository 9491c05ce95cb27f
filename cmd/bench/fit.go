package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"

	"peftbench/analysis"
	"peftbench/configs"
	"peftbench/plots"
	"peftbench/results"
)

func init() {
	register(command{
		Name:    "fit",
		Order:   57,
		Summary: "fit forgetting laws to a results folder: L_f = a − b·L_ft and L_f = c + A·P^α·N^β, with bootstrap CIs and R²",
		Run:     runFit,
	})
}

// fitResult is one law fitted to one task's trials.
type fitResult struct {
	Task  string        `json:"task"`
	Law   string        `json:"law"` // "linear" (against the fine-tuning loss) or "power"
	Y     string        `json:"y"`   // the response column
	X     []string      `json:"x"`   // the predictor columns, in the form's variable order
	Fit   *analysis.Fit `json:"fit,omitempty"`
	Error string        `json:"error,omitempty"`
}

// fitOptions are the inputs of `bench fit`.
type fitOptions struct {
	Form string   // power law form: power, power-P, power-N, multiplicative
	X    []string // its predictor columns; default by form
	Y    string   // response column; default forgetting
	Task string   // only this task; "" = every task
}

func runFit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o fitOptions
	fs.StringVar(&o.Form, "form", "power", "power-law form: "+strings.Join(powerForms(), ", "))
	x := fs.String("x", "", "comma-separated predictor `columns` of the power law, in the form's order (default trainable_params,steps: P, N)")
	fs.StringVar(&o.Y, "y", "forgetting", "response `column`")
	fs.StringVar(&o.Task, "task", "", "fit only this `task` (default: each task of the sweep)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench fit DIR [--json] [--form power|power-P|power-N|multiplicative] [--x trainable_params,steps] [--y forgetting] [--task T]")
		fmt.Fprintln(stderr, "\nFits, per task, over the sweep's ok trials (Kalajdzievski 2024, arXiv 2401.05605):")
		fmt.Fprintln(stderr, "  linear  L_f = a − b·L_ft        forgetting against the fine-tuning loss (target_loss)")
		fmt.Fprintln(stderr, "  power   L_f = c + A·P^α·N^β     forgetting against trainable parameters P and steps N")
		fmt.Fprintln(stderr, "by least squares (nonlinear: gonum/optimize), with fixed-seed percentile-bootstrap 95% CIs and R².")
		fmt.Fprintf(stderr, "A fit with R² below %.1f, or a zero-width CI on data it does not fit exactly, is degenerate\n", analysis.MinR2)
		fmt.Fprintln(stderr, "and refused (analysis.Fit.Accept; the report applies the same rule).")
		fmt.Fprintln(stderr, "Columns: "+strings.Join(fitColumns, ", ")+", or a key of the extra column.")
		fs.PrintDefaults()
	}
	dir, err := parseResultsDirArgs(fs, args)
	if err != nil {
		return err
	}
	if *x != "" {
		o.X = splitList(*x)
	}
	d, err := plots.Load(dir)
	if err != nil {
		return err
	}
	warnResults(stderr, "bench fit", d.Warnings)
	fits, err := fitLaws(d.Trials, o)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(stdout, fits); err != nil {
			return err
		}
	} else if err := printFits(stdout, fits); err != nil {
		return err
	}
	if !slices.ContainsFunc(fits, func(f *fitResult) bool { return f.Fit != nil }) {
		return errors.New("bench fit: no law could be fitted")
	}
	return nil
}

func powerForms() []string {
	var out []string
	for _, f := range analysis.FormNames() {
		if f != "linear" {
			out = append(out, f)
		}
	}
	return out
}

// fitColumns are the numeric trials.parquet columns a fit may use.
var fitColumns = configs.ColumnNames()

// fitLaws fits the linear and the power law to each task's ok trials. A
// law that cannot be fitted (too few points, a constant predictor) is a
// result with an Error; bad options are an error.
func fitLaws(trials []results.TrialRow, o fitOptions) ([]*fitResult, error) {
	vars, ok := analysis.FormVars(o.Form)
	if !ok || o.Form == "linear" {
		return nil, fmt.Errorf("bench fit: --form %q: want one of %s", o.Form, strings.Join(powerForms(), ", "))
	}
	if o.X == nil {
		for _, v := range vars {
			o.X = append(o.X, map[string]string{"P": "trainable_params", "N": "steps"}[v])
		}
	}
	if len(o.X) != len(vars) {
		return nil, fmt.Errorf("bench fit: --x %s: form %s takes %d predictors (%s)", strings.Join(o.X, ","), o.Form, len(vars), strings.Join(vars, ", "))
	}
	if o.Y == "" {
		o.Y = "forgetting"
	}
	known := func(name string) bool {
		if configs.IsColumn(name) {
			return true
		}
		return slices.ContainsFunc(trials, func(t results.TrialRow) bool { _, ok := t.Extra[name]; return ok })
	}
	for _, c := range append(slices.Clone(o.X), o.Y) {
		if !known(c) {
			return nil, fmt.Errorf("bench fit: unknown column %q; columns: %s, or a key of the extra column", c, strings.Join(fitColumns, ", "))
		}
	}

	byTask := map[string][]*results.TrialRow{}
	for i := range trials {
		t := &trials[i]
		if t.Status == results.StatusOK && (o.Task == "" || t.Task == o.Task) {
			byTask[t.Task] = append(byTask[t.Task], t)
		}
	}
	if len(byTask) == 0 {
		if o.Task != "" {
			return nil, fmt.Errorf("bench fit: no ok trial of task %q", o.Task)
		}
		return nil, errors.New("bench fit: no ok trials")
	}
	tasks := make([]string, 0, len(byTask))
	for t := range byTask {
		tasks = append(tasks, t)
	}
	sort.Strings(tasks)
	var out []*fitResult
	for _, task := range tasks {
		ts := byTask[task]
		out = append(out,
			fitOne(task, "linear", "linear", []string{"target_loss"}, o.Y, ts),
			fitOne(task, "power", o.Form, o.X, o.Y, ts))
	}
	return out, nil
}

// fitOne fits form to the trials' (x, y) points that are usable: finite,
// and positive predictors for a power law. Too few points, a constant
// predictor (analysis.CheckData) or a degenerate fit (Fit.Accept) is a
// result with an Error and no Fit.
func fitOne(task, law, form string, xcols []string, ycol string, ts []*results.TrialRow) *fitResult {
	r := &fitResult{Task: task, Law: law, Y: ycol, X: xcols}
	var xs [][]float64
	var ys []float64
	ycolumn, _ := configs.Lookup(ycol)
	xcolumns := make([]configs.Column, len(xcols))
	for j, c := range xcols {
		xcolumns[j], _ = configs.Lookup(c)
	}
	for _, t := range ts {
		y := ycolumn.Value(t)
		if math.IsNaN(y) || math.IsInf(y, 0) {
			continue
		}
		row := make([]float64, len(xcols))
		ok := true
		for j, c := range xcolumns {
			v := c.Value(t)
			if math.IsNaN(v) || math.IsInf(v, 0) || (law == "power" && v <= 0) {
				ok = false
				break
			}
			row[j] = v
		}
		if ok {
			xs, ys = append(xs, row), append(ys, y)
		}
	}
	if err := analysis.CheckData(form, xs, xcols); err != nil {
		r.Error = err.Error()
		return r
	}
	f, err := analysis.FitForm(form, xs, ys, analysis.FitOptions{})
	if err != nil {
		r.Error = err.Error()
		return r
	}
	// The rule the report's forgetting laws follow too: a degenerate fit
	// (low R², zero-width intervals) is no law.
	if err := f.Accept(); err != nil {
		r.Error = err.Error()
		return r
	}
	r.Fit = f
	return r
}

// printFits prints one row per fitted parameter, the law and its fit
// statistics on the first.
func printFits(w io.Writer, fits []*fitResult) error {
	tw := newTable(w, "TASK", "LAW", "N", "R²", "PARAM", "VALUE", "95% CI")
	var notes []string
	for _, r := range fits {
		if r.Fit == nil {
			tw.row(r.Task, r.Law, "-", "-", "-", "-", "no fit: "+r.Error)
			continue
		}
		f := r.Fit
		law := f.Formula
		if r.Law == "power" {
			law += fmt.Sprintf(" (%s = %s)", strings.Join(f.Vars, ", "), strings.Join(r.X, ", "))
		}
		for i, p := range f.Params {
			task, n, r2 := r.Task, fmt.Sprint(f.N), fmt.Sprintf("%.3f", f.R2)
			if i > 0 {
				task, law, n, r2 = "", "", "", ""
			}
			tw.row(task, law, n, r2, p, fmt.Sprintf("%.4g", f.Values[i]), fmt.Sprintf("[%.4g, %.4g]", f.CILo[i], f.CIHi[i]))
		}
		for _, warn := range f.Warnings {
			notes = append(notes, fmt.Sprintf("warning: %s %s: %s", r.Task, r.Law, warn))
		}
	}
	if err := tw.flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	return nil
}
