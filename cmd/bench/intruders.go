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

	"peftbench/analysis"
	"peftbench/plots"
	"peftbench/results"
)

func init() {
	register(command{
		Name:    "intruders",
		Order:   62,
		Summary: "intruder dimensions and ΔW ranks of a results folder, per task, method, rank and α, across seeds",
		Run:     runIntruders,
	})
}

// intruderCell is one (task, method, rank, α) configuration across seeds.
type intruderCell struct {
	Task   string   `json:"task"`
	Method string   `json:"method"`
	Rank   int64    `json:"rank"`
	Alpha  *float64 `json:"alpha,omitempty"` // the method's resolved α; nil without one
	// Counts holds each seed's intruder count at Epsilon, in seed order.
	Epsilon       float64          `json:"epsilon"`
	Counts        []int64          `json:"counts"`
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
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench intruders DIR [--eps 0.5] [--json]")
		fmt.Fprintln(stderr, "\nIntruder dimensions (Shuttleworth et al. 2024) summed over each trial's targeted")
		fmt.Fprintln(stderr, "layers, and the effective and 90% energy ranks of ΔW averaged over them: mean,")
		fmt.Fprintln(stderr, "SD and bootstrap 95 percent CI across seeds per task, method, rank and α.")
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
	cells, err := intruderCells(d.Trials, *eps)
	if err != nil {
		return fmt.Errorf("bench intruders: %s: %w", dir, err)
	}
	if *asJSON {
		return writeJSON(stdout, cells)
	}
	tw := newTable(stdout, "TASK", "METHOD", "RANK", "ALPHA", "SEEDS", fmt.Sprintf("INTRUDERS@%g", *eps), "PER SEED", "EFF RANK ΔW", "ENERGY90 ΔW", "TARGET LOSS", "FORGETTING")
	for _, c := range cells {
		rank, alpha := "-", "-"
		if c.Rank > 0 {
			rank = fmt.Sprint(c.Rank)
		}
		if c.Alpha != nil {
			alpha = strconv.FormatFloat(*c.Alpha, 'g', -1, 64)
		}
		tw.row(c.Task, c.Method, rank, alpha, fmt.Sprint(c.Intruders.N),
			fmtSummary(c.Intruders, 1), fmt.Sprint(c.Counts),
			fmtSummary(c.EffectiveRank, 1), fmtSummary(c.EnergyRank90, 1),
			fmtSummary(c.TargetLoss, 3), fmtSummary(c.Forgetting, 3))
	}
	return tw.flush()
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

// intruderCells groups the analysed ok trials by task, method, rank and α.
func intruderCells(trials []results.TrialRow, eps float64) ([]*intruderCell, error) {
	type key struct {
		task, method string
		rank         int64
		alpha        float64
	}
	type group struct {
		cell  *intruderCell
		seeds []int64
		rows  []*results.TrialRow
	}
	groups := map[key]*group{}
	var order []key
	analysed := 0
	for i := range trials {
		t := &trials[i]
		if t.Status != results.StatusOK || len(t.Intruders) == 0 {
			continue
		}
		analysed++
		alpha := trialAlpha(t.Config)
		k := key{t.Task, t.Method, t.Rank, cmp.Or(alpha, math.Inf(-1))}
		g, ok := groups[k]
		if !ok {
			g = &group{cell: &intruderCell{Task: t.Task, Method: t.Method, Rank: t.Rank, Epsilon: eps}}
			if alpha != 0 {
				g.cell.Alpha = &alpha
			}
			groups[k] = g
			order = append(order, k)
		}
		g.rows = append(g.rows, t)
	}
	if analysed == 0 {
		return nil, errors.New("no ok trial has intruder counts (was the sweep run with [analysis] spectra = true?)")
	}
	slices.SortFunc(order, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.task, b.task), cmp.Compare(methodOrder(a.method), methodOrder(b.method)),
			cmp.Compare(a.method, b.method), cmp.Compare(a.rank, b.rank), cmp.Compare(a.alpha, b.alpha))
	})
	var out []*intruderCell
	for _, k := range order {
		g := groups[k]
		slices.SortFunc(g.rows, func(a, b *results.TrialRow) int { return cmp.Compare(a.Seed, b.Seed) })
		var counts, eff, energy, loss, forget []float64
		for _, t := range g.rows {
			i := slices.IndexFunc(t.Intruders, func(c results.IntruderCount) bool { return math.Abs(c.Epsilon-eps) < 1e-9 })
			if i < 0 {
				return nil, fmt.Errorf("trial %s has no intruder count at ε = %g (it has %v)", t.TrialID, eps, epsilonsOf(t.Intruders))
			}
			g.cell.Counts = append(g.cell.Counts, t.Intruders[i].Count)
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
