package configs

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"peftbench/analysis"
	"peftbench/results"
)

// IntruderCell is one configuration across seeds with its intruder
// dimensions at one threshold, as `bench intruders` reports it.
type IntruderCell struct {
	Task   string   `json:"task"`
	Method string   `json:"method"`
	Rank   int64    `json:"rank"`
	Alpha  *float64 `json:"alpha,omitempty"` // the method's resolved α; nil without one
	// Settings are the other config pairs that vary across the method's
	// configurations of the task ("train.lr=0.001"), sorted by path.
	Settings []string `json:"settings,omitempty"`
	// Seeds, and each seed's intruder count at Epsilon and target loss, in
	// seed order.
	Seeds         []int64          `json:"seeds"`
	Epsilon       float64          `json:"epsilon"`
	Counts        []int64          `json:"counts"`
	TargetLosses  []float64        `json:"target_losses"`
	Intruders     analysis.Summary `json:"intruders"`
	EffectiveRank analysis.Summary `json:"effective_rank"` // of ΔW, mean over layers
	EnergyRank90  analysis.Summary `json:"energy_rank_90"` // of ΔW, mean over layers
	TargetLoss    analysis.Summary `json:"target_loss"`
	Forgetting    analysis.Summary `json:"forgetting"`

	cfg *Config
}

// IntruderCells groups the analysed ok trials by configuration (Group),
// so that a sweep over learning rates (or anything else) does not pass its
// configurations off as seeds of one, and summarises each over its seeds
// at threshold eps. Settings vary across a method's configurations of a
// task, α aside (a column of its own). Cells come by task, full fine-tuning
// first, method, rank, α and settings.
func IntruderCells(trials []results.TrialRow, eps float64) ([]*IntruderCell, error) {
	var analysed []*results.TrialRow
	for i := range trials {
		if t := &trials[i]; t.Status == results.StatusOK && len(t.Intruders) > 0 {
			analysed = append(analysed, t)
		}
	}
	if len(analysed) == 0 {
		return nil, errors.New("no ok trial has intruder counts (was the sweep run with [analysis] spectra = true?)")
	}
	cs, err := Group(analysed)
	if err != nil {
		return nil, err
	}
	SetSettings(cs, SlotMethod)
	for _, c := range cs {
		c.Settings = slices.DeleteFunc(c.Settings, func(p string) bool { return strings.HasPrefix(p, AlphaPath+"=") })
	}
	alpha := func(c *Config) float64 {
		if math.IsNaN(c.Alpha) {
			return math.Inf(-1)
		}
		return c.Alpha
	}
	slices.SortFunc(cs, func(a, b *Config) int {
		return cmp.Or(cmp.Compare(a.Task, b.Task), cmp.Compare(referenceFirst(a), referenceFirst(b)),
			cmp.Compare(a.Method, b.Method), cmp.Compare(a.Rank, b.Rank), cmp.Compare(alpha(a), alpha(b)),
			ComparePairs(a.Pairs, b.Pairs))
	})
	var out []*IntruderCell
	for _, c := range cs {
		slices.SortFunc(c.Trials, func(a, b *results.TrialRow) int { return cmp.Compare(a.Seed, b.Seed) })
		cell := &IntruderCell{Task: c.Task, Method: c.Method, Rank: c.Rank, Settings: c.Settings, Epsilon: eps, cfg: c}
		if !math.IsNaN(c.Alpha) {
			a := c.Alpha
			cell.Alpha = &a
		}
		var counts []float64
		for _, t := range c.Trials {
			n, ok := IntruderCount(t, eps)
			if !ok {
				return nil, fmt.Errorf("trial %s has no intruder count at ε = %g (it has %v)", t.TrialID, eps, epsilonsOf(t.Intruders))
			}
			cell.Seeds = append(cell.Seeds, t.Seed)
			cell.Counts = append(cell.Counts, n)
			cell.TargetLosses = append(cell.TargetLosses, t.TargetLoss)
			counts = append(counts, float64(n))
		}
		cell.Intruders = analysis.Summarize(counts)
		cell.EffectiveRank = c.Summary(EffectiveRank)
		cell.EnergyRank90 = c.Summary(EnergyRank90)
		cell.TargetLoss = c.Summary(TargetLoss)
		cell.Forgetting = c.Summary(Forgetting)
		out = append(out, cell)
	}
	return out, nil
}

// referenceFirst puts the configurations without a rank (full
// fine-tuning), the reference, first.
func referenceFirst(c *Config) int {
	if !c.Ranked() {
		return 0
	}
	return 1
}

func epsilonsOf(cs []results.IntruderCount) []float64 {
	var es []float64
	for _, c := range cs {
		es = append(es, c.Epsilon)
	}
	return es
}

// MatchedRow is one curve — a configuration's trials along one swept
// setting (the learning rate), seed by seed — read at one target loss.
// Shuttleworth et al. 2024 compare LoRA with full fine-tuning at matched
// accuracy; a comparison at equal learning rate mostly measures which run
// learnt more.
type MatchedRow struct {
	Task   string   `json:"task"`
	Method string   `json:"method"`
	Rank   int64    `json:"rank"`
	Alpha  *float64 `json:"alpha,omitempty"`
	// Settings are the other varying settings; the along axis is removed.
	Settings []string `json:"settings,omitempty"`
	Along    string   `json:"along"`  // the setting the curve runs along
	Points   int      `json:"points"` // configurations on the curve
	// LossLo and LossHi bound the curve's mean target loss.
	LossLo  float64 `json:"loss_lo"`
	LossHi  float64 `json:"loss_hi"`
	Level   float64 `json:"target_loss"`
	Epsilon float64 `json:"epsilon"`
	// Seeds read at Level, and the count interpolated on each (see
	// analysis.ReadAt); none when the curve does not reach Level.
	Seeds     []int64          `json:"seeds"`
	Values    []float64        `json:"values"`
	Intruders analysis.Summary `json:"intruders"`
	AllSeeds  int              `json:"all_seeds"` // seeds on the curve

	// Curve is the index of the row's curve, for a table's rows.
	Curve int `json:"-"`
}

// Matched reads every curve of cells (Curves along along) at the
// target-loss levels: the given ones for every task, or else each task's
// reference levels (ReferenceLevels: its full fine-tuning losses). notes
// say which tasks have no levels.
func Matched(cells []*IntruderCell, along string, levels []float64) (rows []*MatchedRow, notes []string) {
	cellOf := map[*Config]*IntruderCell{}
	cs := make([]*Config, len(cells))
	for i, c := range cells {
		cs[i] = c.cfg
		cellOf[c.cfg] = c
	}
	merged, points := Curves(cs, along)
	taskLevels := map[string][]float64{}
	var tasks []string
	for _, c := range cells {
		if !slices.Contains(tasks, c.Task) {
			tasks = append(tasks, c.Task)
		}
	}
	for _, t := range tasks {
		if levels != nil {
			taskLevels[t] = levels
		} else {
			taskLevels[t] = ReferenceLevels(slices.DeleteFunc(slices.Clone(cs), func(c *Config) bool { return c.Task != t }))
		}
		slices.Sort(taskLevels[t])
		if len(taskLevels[t]) == 0 {
			notes = append(notes, fmt.Sprintf("%s: no full fine-tuning to match; pass --at with target losses", t))
		}
	}
	eps := 0.0
	if len(cells) > 0 {
		eps = cells[0].Epsilon
	}
	y := Intruders(eps)
	for ci, m := range merged {
		first := cellOf[points[m][0]]
		var rest []string
		for _, p := range first.Settings {
			if !IsAlong(p, along) {
				rest = append(rest, p)
			}
		}
		lo, hi := 0.0, 0.0
		for i, c := range points[m] {
			mean := cellOf[c].TargetLoss.Mean
			if i == 0 || mean < lo {
				lo = mean
			}
			if i == 0 || mean > hi {
				hi = mean
			}
		}
		seeds := map[int64]bool{}
		for _, t := range m.Trials {
			seeds[t.Seed] = true
		}
		for _, level := range taskLevels[m.Task] {
			r := ReadCurve(points[m], y, level)
			rows = append(rows, &MatchedRow{Task: m.Task, Method: m.Method, Rank: m.Rank, Alpha: first.Alpha, Settings: rest,
				Along: along, Points: len(points[m]), LossLo: lo, LossHi: hi, Level: level, Epsilon: first.Epsilon,
				Seeds: r.Seeds, Values: r.Values, Intruders: r.Summary, AllSeeds: len(seeds), Curve: ci})
		}
	}
	return rows, notes
}

// FormatAlpha writes a resolved α for a table; "-" for none.
func FormatAlpha(a *float64) string {
	if a == nil {
		return "-"
	}
	return strconv.FormatFloat(*a, 'g', -1, 64)
}
