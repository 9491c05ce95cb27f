package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"peftbench/analysis"
	"peftbench/plots"
	"peftbench/results"
)

func init() {
	register(command{
		Name:    "intruders",
		Order:   62,
		Summary: "intruder dimensions and ΔW ranks of a results folder, per configuration (task, method, rank, α, every other swept setting), across seeds",
		Run:     runIntruders,
	})
}

// intruderCell is one configuration across seeds: task, method, rank, α
// and every other setting of the trial config but the seed.
type intruderCell struct {
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
}

func runIntruders(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("intruders", flag.ContinueOnError)
	fs.SetOutput(stderr)
	eps := fs.Float64("eps", 0.5, "intruder threshold ε to report (one the sweep's [analysis] epsilons computed)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	match := fs.Bool("match", false, "compare at matched target loss: read each configuration's curve along --along at the --at losses")
	at := fs.String("at", "", "comma-separated target losses for --match (default: each task's full fine-tuning losses)")
	along := fs.String("along", "lr", "the swept setting a --match curve runs along")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench intruders DIR [--eps 0.5] [--match [--at L1,L2] [--along lr]] [--json]")
		fmt.Fprintln(stderr, "\nIntruder dimensions (Shuttleworth et al. 2024) summed over each trial's targeted")
		fmt.Fprintln(stderr, "layers, and the effective and 90% energy ranks of ΔW averaged over them: mean,")
		fmt.Fprintln(stderr, "SD and bootstrap 95 percent CI across seeds per configuration: task, method,")
		fmt.Fprintln(stderr, "rank, α and every other setting that varies (SETTINGS, e.g. lr=1e-4).")
		fmt.Fprintln(stderr, "\nWith --match, the paper's protocol: a configuration's runs along a swept")
		fmt.Fprintln(stderr, "setting (the learning rate) trace a curve of (target loss, intruders) per seed;")
		fmt.Fprintln(stderr, "the count is interpolated on it at each target loss and summarised over seeds.")
		fs.PrintDefaults()
	}
	dir, err := parseResultsDirArgs(fs, args)
	if err != nil {
		return err
	}
	d, err := plots.Load(dir)
	if err != nil {
		return err
	}
	warnResults(stderr, "bench intruders", d.Warnings)
	cells, err := intruderCells(d.Trials, *eps)
	if err != nil {
		return fmt.Errorf("bench intruders: %s: %w", dir, err)
	}
	if *match || *at != "" {
		levels, err := parseLevels(*at)
		if err != nil {
			return fmt.Errorf("bench intruders: --at: %w", err)
		}
		rows, notes := matchedRows(cells, *along, levels)
		if *asJSON {
			return writeJSON(stdout, rows)
		}
		return writeMatched(stdout, rows, notes, *eps, *along)
	}
	if *asJSON {
		return writeJSON(stdout, cells)
	}
	tw := newTable(stdout, "TASK", "METHOD", "RANK", "ALPHA", "SETTINGS", "SEEDS", fmt.Sprintf("INTRUDERS@%g", *eps), "PER SEED", "EFF RANK ΔW", "ENERGY90 ΔW", "TARGET LOSS", "FORGETTING")
	for _, c := range cells {
		rank, alpha, settings := configColumns(c.Rank, c.Alpha, c.Settings)
		tw.row(c.Task, c.Method, rank, alpha, settings, fmt.Sprint(c.Intruders.N),
			fmtSummary(c.Intruders, 1), fmt.Sprint(c.Counts),
			fmtSummary(c.EffectiveRank, 1), fmtSummary(c.EnergyRank90, 1),
			fmtSummary(c.TargetLoss, 3), fmtSummary(c.Forgetting, 3))
	}
	return tw.flush()
}

// configColumns writes a configuration's rank, α and other settings for a
// table, "-" where it has none.
func configColumns(r int64, a *float64, settings []string) (rank, alpha, rest string) {
	rank, alpha, rest = "-", "-", "-"
	if r > 0 {
		rank = fmt.Sprint(r)
	}
	if a != nil {
		alpha = strconv.FormatFloat(*a, 'g', -1, 64)
	}
	if len(settings) > 0 {
		short := make([]string, len(settings))
		for i, p := range settings {
			short[i] = plots.ShortPair(p)
		}
		rest = strings.Join(short, " ")
	}
	return rank, alpha, rest
}

// fmtSummary prints mean ± SD (just the mean for one seed).
func fmtSummary(s analysis.Summary, prec int) string {
	switch {
	case s.N == 0 || math.IsNaN(s.Mean):
		return "-"
	case s.N == 1 || math.IsNaN(s.SD):
		return strconv.FormatFloat(s.Mean, 'f', prec, 64)
	}
	return fmt.Sprintf("%.*f ± %.*f", prec, s.Mean, prec, s.SD)
}

// intruderCells groups the analysed ok trials by configuration: task,
// method, rank and every setting of the config but the seed, so that a
// sweep over learning rates (or anything else) does not pass its
// configurations off as seeds of one.
func intruderCells(trials []results.TrialRow, eps float64) ([]*intruderCell, error) {
	type group struct {
		cell  *intruderCell
		alpha float64
		pairs []string
		rows  []*results.TrialRow
	}
	groups := map[string]*group{}
	var order []*group
	analysed := 0
	for i := range trials {
		t := &trials[i]
		if t.Status != results.StatusOK || len(t.Intruders) == 0 {
			continue
		}
		analysed++
		pairs, err := results.ConfigPairs(t.Config)
		if err != nil {
			return nil, fmt.Errorf("trial %s: %w", t.TrialID, err)
		}
		k := strings.Join(append([]string{t.Task, t.Method, fmt.Sprint(t.Rank)}, pairs...), "\x00")
		g, ok := groups[k]
		if !ok {
			alpha := trialAlpha(t.Config)
			g = &group{cell: &intruderCell{Task: t.Task, Method: t.Method, Rank: t.Rank, Epsilon: eps},
				alpha: cmp.Or(alpha, math.Inf(-1)), pairs: pairs}
			if alpha != 0 {
				g.cell.Alpha = &alpha
			}
			groups[k] = g
			order = append(order, g)
		}
		g.rows = append(g.rows, t)
	}
	if analysed == 0 {
		return nil, errors.New("no ok trial has intruder counts (was the sweep run with [analysis] spectra = true?)")
	}
	// Settings: what varies across a method's configurations of a task,
	// α aside (a column of its own).
	byMethod := map[[2]string][]*group{}
	for _, g := range order {
		k := [2]string{g.cell.Task, g.cell.Method}
		byMethod[k] = append(byMethod[k], g)
	}
	for _, gs := range byMethod {
		var ps [][]string
		for _, g := range gs {
			ps = append(ps, g.pairs)
		}
		for i, v := range plots.VaryingPairs(ps) {
			gs[i].cell.Settings = slices.DeleteFunc(v, func(p string) bool { return strings.HasPrefix(p, "method_options.alpha=") })
		}
	}
	slices.SortFunc(order, func(a, b *group) int {
		return cmp.Or(cmp.Compare(a.cell.Task, b.cell.Task), cmp.Compare(methodOrder(a.cell.Method), methodOrder(b.cell.Method)),
			cmp.Compare(a.cell.Method, b.cell.Method), cmp.Compare(a.cell.Rank, b.cell.Rank), cmp.Compare(a.alpha, b.alpha),
			plots.ComparePairs(a.pairs, b.pairs))
	})
	var out []*intruderCell
	for _, g := range order {
		slices.SortFunc(g.rows, func(a, b *results.TrialRow) int { return cmp.Compare(a.Seed, b.Seed) })
		var counts, eff, energy, loss, forget []float64
		for _, t := range g.rows {
			i := slices.IndexFunc(t.Intruders, func(c results.IntruderCount) bool { return math.Abs(c.Epsilon-eps) < 1e-9 })
			if i < 0 {
				return nil, fmt.Errorf("trial %s has no intruder count at ε = %g (it has %v)", t.TrialID, eps, epsilonsOf(t.Intruders))
			}
			g.cell.Seeds = append(g.cell.Seeds, t.Seed)
			g.cell.Counts = append(g.cell.Counts, t.Intruders[i].Count)
			g.cell.TargetLosses = append(g.cell.TargetLosses, t.TargetLoss)
			counts = append(counts, float64(t.Intruders[i].Count))
			eff = append(eff, t.EffectiveRank)
			energy = append(energy, t.EnergyRank90)
			loss = append(loss, t.TargetLoss)
			forget = append(forget, t.Forgetting)
		}
		g.cell.Intruders = analysis.Summarize(counts)
		g.cell.EffectiveRank = analysis.Summarize(eff)
		g.cell.EnergyRank90 = analysis.Summarize(energy)
		g.cell.TargetLoss = analysis.Summarize(loss)
		g.cell.Forgetting = analysis.Summarize(forget)
		out = append(out, g.cell)
	}
	return out, nil
}

func epsilonsOf(cs []results.IntruderCount) []float64 {
	var es []float64
	for _, c := range cs {
		es = append(es, c.Epsilon)
	}
	return es
}

// methodOrder puts full fine-tuning, the reference, first.
func methodOrder(m string) int {
	if m == "full" {
		return 0
	}
	return 1
}

// trialAlpha is the resolved α in a trial's canonical config JSON; 0 when
// the method has none.
func trialAlpha(config string) float64 {
	var c struct {
		MethodOptions map[string]any `json:"method_options"`
	}
	if json.Unmarshal([]byte(config), &c) != nil {
		return 0
	}
	a, _ := c.MethodOptions["alpha"].(float64)
	return a
}

// parseLevels parses "2.4,2.6"; "" is nil.
func parseLevels(s string) ([]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%q is not a target loss", f)
		}
		out = append(out, x)
	}
	return out, nil
}
