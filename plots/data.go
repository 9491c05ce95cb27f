package plots

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"peftbench/analysis"
	"peftbench/results"
)

// Data is a sweep's results, as read from its folder.
type Data struct {
	Dir      string
	Manifest *results.Manifest // nil when the folder has no manifest.json
	Trials   []results.TrialRow
	Steps    []results.StepRow
	Spectra  []results.SpectrumRow
	// Compacted is false when the tables were read from the per-trial
	// shards because the sweep has not been compacted (yet).
	Compacted bool
	// Warnings are things a reader should know (missing tables).
	Warnings []string

	trialByID map[string]*results.TrialRow
	fits      map[string][]*LawFit // per task, see Fits
}

// Load reads the results folder dir: manifest.json, trials.parquet,
// steps.parquet and spectra.parquet. A folder whose sweep is still running
// (no trials.parquet), or whose tables are behind its shards (a run killed
// before it compacted; see results.TablesStale), is read from its shards
// instead, with a warning. Missing steps or spectra tables are warnings:
// the figures that need them are skipped.
func Load(dir string) (*Data, error) {
	d := &Data{Dir: dir, Compacted: true}
	m, err := results.ReadManifest(dir)
	switch {
	case err == nil:
		d.Manifest = m
	case errors.Is(err, fs.ErrNotExist):
		d.Warnings = append(d.Warnings, "no manifest.json: provenance unknown")
	default:
		return nil, fmt.Errorf("plots: %w", err)
	}
	trialsPath := filepath.Join(dir, results.TrialsFile)
	_, err = os.Stat(trialsPath)
	if errors.Is(err, fs.ErrNotExist) {
		if err := d.readShards(); err != nil {
			return nil, err
		}
		d.Warnings = append(d.Warnings, "sweep not compacted: read from the per-trial shards")
		d.index()
		return d, nil
	}
	// A run killed after some trials ended but before it compacted leaves
	// the tables behind the shards: read the shards then, which are the
	// truth, and say so.
	stale, serr := results.TablesStale(dir)
	switch {
	case serr != nil:
		d.Warnings = append(d.Warnings, fmt.Sprintf("cannot tell whether %s is current: %v", results.TrialsFile, serr))
	case stale != "":
		if err := d.readShards(); err != nil {
			return nil, err
		}
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s is stale (%s): read from the per-trial shards; rerun the sweep to compact it", results.TrialsFile, stale))
		d.index()
		return d, nil
	}
	if d.Trials, err = results.ReadTrials(trialsPath); err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	for _, t := range []struct {
		file string
		read func(string) error
	}{
		{results.StepsFile, func(p string) (err error) { d.Steps, err = results.ReadSteps(p); return }},
		{results.SpectraFile, func(p string) (err error) { d.Spectra, err = results.ReadSpectra(p); return }},
	} {
		p := filepath.Join(dir, t.file)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			d.Warnings = append(d.Warnings, "no "+t.file)
			continue
		}
		if err := t.read(p); err != nil {
			return nil, fmt.Errorf("plots: %w", err)
		}
	}
	d.index()
	return d, nil
}

// readShards fills the tables from the per-trial shards, in plan order,
// and marks d not compacted.
func (d *Data) readShards() error {
	shards, err := results.ReadShards(d.Dir)
	if err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	if len(shards) == 0 {
		return fmt.Errorf("plots: %s: no %s and no trial shards: not a results folder", d.Dir, results.TrialsFile)
	}
	d.Compacted = false
	ids := make([]string, 0, len(shards))
	for id := range shards {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := shards[ids[i]].Trial, shards[ids[j]].Trial
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		return ids[i] < ids[j]
	})
	d.Trials, d.Steps, d.Spectra = nil, nil, nil
	for _, id := range ids {
		s := shards[id]
		d.Trials = append(d.Trials, s.Trial)
		d.Steps = append(d.Steps, s.Steps...)
		d.Spectra = append(d.Spectra, s.Spectra...)
	}
	return nil
}

func (d *Data) index() {
	d.trialByID = make(map[string]*results.TrialRow, len(d.Trials))
	for i := range d.Trials {
		d.trialByID[d.Trials[i].TrialID] = &d.Trials[i]
	}
}

// Trial returns the trial with the given ID, or nil.
func (d *Data) Trial(id string) *results.TrialRow {
	if d.trialByID == nil {
		d.index()
	}
	return d.trialByID[id]
}

// Tasks lists the tasks with at least one successful trial, sorted.
func (d *Data) Tasks() []string {
	var ts []string
	for i := range d.Trials {
		if d.Trials[i].Status == results.StatusOK && !slices.Contains(ts, d.Trials[i].Task) {
			ts = append(ts, d.Trials[i].Task)
		}
	}
	sort.Strings(ts)
	return ts
}

// Failed lists the trials that did not finish ok, in plan order.
func (d *Data) Failed() []results.TrialRow {
	var out []results.TrialRow
	for _, t := range d.Trials {
		if t.Status != results.StatusOK {
			out = append(out, t)
		}
	}
	return out
}

// Cell is the successful trials of one configuration: task, method, rank
// and every other resolved setting but the seed. It is one point of most
// figures, its seeds giving the confidence interval.
type Cell struct {
	Task, Method string
	Rank         int64   // ≤ 0 for methods without a rank (full fine-tuning)
	Alpha        float64 // the method's resolved α; NaN without one
	// Settings are the config pairs that tell the cell apart from the
	// method's other cells of the same rank ("train.lr=0.001"), if any.
	Settings []string
	Trials   []*results.TrialRow

	pairs []string // ConfigPairs of the trials
}

// Ranked reports whether the method has a rank.
func (c *Cell) Ranked() bool { return c.Rank > 0 }

// Label is "method r=8", or the method alone when it has no rank,
// followed by the settings that tell the cell apart ("full lr=1e-4").
func (c *Cell) Label() string {
	l := c.Method
	if c.Ranked() {
		l = fmt.Sprintf("%s r=%d", c.Method, c.Rank)
	}
	for _, p := range c.Settings {
		l += " " + ShortPair(p)
	}
	return l
}

// Summary summarises a metric over the cell's seeds (mean, bootstrap 95% CI).
func (c *Cell) Summary(m Metric) analysis.Summary {
	xs := make([]float64, len(c.Trials))
	for i, t := range c.Trials {
		xs[i] = m.Get(t)
	}
	return analysis.Summarize(xs)
}

// Has reports whether any seed of the cell reports the metric.
func (c *Cell) Has(m Metric) bool {
	for _, t := range c.Trials {
		if !math.IsNaN(m.Get(t)) {
			return true
		}
	}
	return false
}

// Cells groups the successful trials of task by configuration: method,
// rank and every other setting of the trial's config but the seed
// (learning rate, α, …). Methods come in the fixed order, then ranks, then
// settings in numeric order. A trial whose config does not parse is
// grouped by method and rank alone.
func (d *Data) Cells(task string) []*Cell {
	var cells []*Cell
	idx := map[string]*Cell{}
	for i := range d.Trials {
		t := &d.Trials[i]
		if t.Task != task || t.Status != results.StatusOK {
			continue
		}
		rank := max(t.Rank, 0)
		pairs, _ := results.ConfigPairs(t.Config)
		k := strings.Join(append([]string{t.Method, fmt.Sprint(rank)}, pairs...), "\x00")
		c := idx[k]
		if c == nil {
			c = &Cell{Task: task, Method: t.Method, Rank: rank, Alpha: math.NaN(), pairs: pairs}
			for _, p := range pairs {
				if path, _, _ := strings.Cut(p, "="); path == "method_options.alpha" {
					c.Alpha = pairValue(p)
				}
			}
			idx[k] = c
			cells = append(cells, c)
		}
		c.Trials = append(c.Trials, t)
	}
	slices.SortFunc(cells, func(a, b *Cell) int {
		return cmp.Or(methodLess(a.Method, b.Method), cmp.Compare(a.Rank, b.Rank), ComparePairs(a.pairs, b.pairs))
	})
	// Settings: what differs between cells of one method and rank.
	for i := 0; i < len(cells); {
		j := i + 1
		for j < len(cells) && cells[j].Method == cells[i].Method && cells[j].Rank == cells[i].Rank {
			j++
		}
		if j-i > 1 {
			var ps [][]string
			for _, c := range cells[i:j] {
				ps = append(ps, c.pairs)
			}
			for k, v := range VaryingPairs(ps) {
				cells[i+k].Settings = v
			}
		}
		i = j
	}
	return cells
}

// byMethod splits cells (already ordered) by method, keeping order.
func byMethod(cells []*Cell) (methods []string, groups map[string][]*Cell) {
	groups = map[string][]*Cell{}
	for _, c := range cells {
		if _, ok := groups[c.Method]; !ok {
			methods = append(methods, c.Method)
		}
		groups[c.Method] = append(groups[c.Method], c)
	}
	return methods, groups
}

// Metric is one per-trial quantity of trials.parquet.
type Metric struct {
	Key    string // trials.parquet column, or extra.<name>
	Label  string // axis label, with unit
	Short  string // table header
	Higher bool   // higher is better
	Get    func(*results.TrialRow) float64
}

// Metrics the figures and the report use.
var (
	TargetMetric = Metric{"target_metric", "target accuracy", "target metric", true,
		func(t *results.TrialRow) float64 { return t.TargetMetric }}
	TargetLoss = Metric{"target_loss", "target loss (nats)", "target loss", false,
		func(t *results.TrialRow) float64 { return t.TargetLoss }}
	Forgetting = Metric{"forgetting", "forgetting: KL(base ‖ tuned) on retain (nats)", "forgetting", false,
		func(t *results.TrialRow) float64 { return t.Forgetting }}
	RetainMetric = Metric{"retain_metric_after", "retain accuracy after", "retain after", true,
		func(t *results.TrialRow) float64 { return t.RetainMetricAfter }}
	TrainableParams = Metric{"trainable_params", "trainable parameters", "params", false,
		func(t *results.TrialRow) float64 { return float64(t.TrainableParams) }}
	WallSeconds = Metric{"wall_seconds", "wall time (s)", "wall s", false,
		func(t *results.TrialRow) float64 { return t.WallSeconds }}
	RefusalRetention = Metric{"extra.refusal_retention", "refusal retention (fraction refused)", "refusal retention", true,
		func(t *results.TrialRow) float64 { return extra(t, "refusal_retention") }}
)

// IntruderMetric is the intruder count at ε (NaN when not computed).
func IntruderMetric(eps float64) Metric {
	return Metric{fmt.Sprintf("intruders@%g", eps), fmt.Sprintf("intruder dimensions (ε = %g)", eps),
		fmt.Sprintf("intruders ε=%g", eps), false,
		func(t *results.TrialRow) float64 {
			for _, c := range t.Intruders {
				if c.Epsilon == eps {
					return float64(c.Count)
				}
			}
			return math.NaN()
		}}
}

func extra(t *results.TrialRow, name string) float64 {
	if v, ok := t.Extra[name]; ok {
		return v
	}
	return math.NaN()
}

// metricLabel names the target metric of a task on an axis. The shipped
// tasks report accuracy; others get the generic name.
func metricLabel(task string) string {
	switch task {
	case "teacher-shift", "mnist-split", "mnist-permuted", "modarith", "safety-guard", "continual":
		return "target accuracy"
	}
	return "target metric"
}

// epsilons lists the intruder thresholds the task's trials report, ascending.
func (d *Data) epsilons(task string) []float64 {
	var es []float64
	for i := range d.Trials {
		t := &d.Trials[i]
		if t.Task != task || t.Status != results.StatusOK {
			continue
		}
		for _, c := range t.Intruders {
			if !slices.Contains(es, c.Epsilon) {
				es = append(es, c.Epsilon)
			}
		}
	}
	slices.Sort(es)
	return es
}
