package plots

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"peftbench/configs"
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
// and every other resolved setting but the seed (configs.Config). It is one
// point of most figures, its seeds giving the confidence interval. Its
// Settings tell it apart from the method's other cells of the same rank.
type Cell = configs.Config

// Cells groups the successful trials of task by configuration
// (configs.Group): method, rank and every other setting of the trial's
// config but the seed (learning rate, α, …). Methods come in the fixed
// order, then ranks, then settings in numeric order. A trial whose config
// does not parse is grouped by method and rank alone.
func (d *Data) Cells(task string) []*Cell {
	var trials []*results.TrialRow
	for i := range d.Trials {
		if t := &d.Trials[i]; t.Task == task && t.Status == results.StatusOK {
			trials = append(trials, t)
		}
	}
	cells, _ := configs.Group(trials)
	slices.SortFunc(cells, func(a, b *Cell) int {
		return cmp.Or(methodLess(a.Method, b.Method), cmp.Compare(a.Rank, b.Rank), configs.ComparePairs(a.Pairs, b.Pairs))
	})
	configs.SetSettings(cells, configs.SlotRank)
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

// Metric is one per-trial quantity of trials.parquet, from the column
// registry.
type Metric = configs.Column

// Metrics the figures and the report use.
var (
	TargetMetric     = configs.TargetMetric
	TargetLoss       = configs.TargetLoss
	Forgetting       = configs.Forgetting
	RetainMetric     = configs.RetainMetricAfter
	TrainableParams  = configs.TrainableParams
	WallSeconds      = configs.WallSeconds
	RefusalRetention = configs.RefusalRetention
)

// IntruderMetric is the intruder count at ε (NaN when not computed).
func IntruderMetric(eps float64) Metric { return configs.Intruders(eps) }

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
