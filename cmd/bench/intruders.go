package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"peftbench/analysis"
	"peftbench/configs"
	"peftbench/plots"
)

func init() {
	register(command{
		Name:    "intruders",
		Order:   62,
		Summary: "intruder dimensions and ΔW ranks of a results folder, per configuration (task, method, rank, α, every other swept setting), across seeds",
		Run:     runIntruders,
	})
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
	cells, err := configs.IntruderCells(d.Trials, *eps)
	if err != nil {
		return fmt.Errorf("bench intruders: %s: %w", dir, err)
	}
	if *match || *at != "" {
		levels, err := parseLevels(*at)
		if err != nil {
			return fmt.Errorf("bench intruders: --at: %w", err)
		}
		rows, notes := configs.Matched(cells, *along, levels)
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
	alpha = configs.FormatAlpha(a)
	if len(settings) > 0 {
		short := make([]string, len(settings))
		for i, p := range settings {
			short[i] = configs.ShortPair(p)
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
