package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"peftbench/analysis"
	"peftbench/configs"
	"peftbench/results"
	"peftbench/sweeps"
)

func init() {
	register(command{
		Name:    "best",
		Order:   45,
		Summary: "a tune sweep's choices per method (chosen on validation) and their test results over the test seeds",
		Run:     runBest,
	})
}

// bestOutput is what `bench best --json` prints.
type bestOutput struct {
	Sweep      string              `json:"sweep"`
	Metric     string              `json:"metric"`      // the validation metric of the choice
	Direction  string              `json:"direction"`   // "max" or "min"
	Axes       []string            `json:"axes"`        // the tuned axes
	TestMetric string              `json:"test_metric"` // the column summarised over the test seeds
	TestSeeds  []int64             `json:"test_seeds"`
	Groups     []analysis.TunedRow `json:"groups"`
}

func runBest(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("best", flag.ContinueOnError)
	fset.SetOutput(stderr)
	jsonOut := fset.Bool("json", false, "print the table as JSON")
	metric := fset.String("metric", "target_metric", "the trials.parquet `column` summarised over the test seeds")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bench best DIR [--json] [--metric COLUMN]")
		fmt.Fprintln(stderr, "DIR is the results folder of a [protocol] kind = \"tune\" sweep.")
		fset.PrintDefaults()
	}
	dir, err := parseResultsDirArgs(fset, args)
	if err != nil {
		return err
	}
	rec, err := results.ReadTune(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("bench best: %s has no %s: it is not the results folder of a tune sweep, or its search has not ended (bench status %s)", dir, results.TuneFile, dir)
	}
	if err != nil {
		return fmt.Errorf("bench best: %w", err)
	}
	shards, err := results.ReadShards(dir)
	if err != nil {
		return fmt.Errorf("bench best: %w", err)
	}
	trials := make(map[string]*results.TrialRow, len(shards))
	for id, s := range shards {
		trials[id] = &s.Trial
	}
	col, _ := configs.Lookup(*metric)
	out := bestOutput{Sweep: rec.Sweep, Metric: rec.Metric, Direction: rec.Direction, Axes: rec.Axes,
		TestMetric: *metric, TestSeeds: rec.TestSeeds, Groups: analysis.Tuned(rec, trials, col.Value)}
	if *jsonOut {
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "sweep %s: %s chosen on validation (%s, %s over %d tune seed(s)); %s over test seeds %v\n",
		out.Sweep, joinAxes(out.Axes), out.Metric, out.Direction, len(rec.TuneSeeds), out.TestMetric, out.TestSeeds)
	task := ""
	var tw *table
	for _, g := range out.Groups {
		if g.Task != task {
			if tw != nil {
				if err := tw.flush(); err != nil {
					return err
				}
			}
			task = g.Task
			fmt.Fprintf(stdout, "\ntask %s\n", task)
			head := []string{"METHOD", "RANK"}
			for _, a := range out.Axes {
				head = append(head, upper(a))
			}
			head = append(head, "POINTS", "VAL "+upper(out.Metric), "TEST "+upper(out.TestMetric), "95% CI", "N")
			tw = newTable(stdout, head...)
		}
		rank := "-"
		if g.Rank > 0 {
			rank = strconv.Itoa(g.Rank)
		}
		row := []string{g.Method, rank}
		for _, a := range out.Axes {
			v, ok := g.Values[a]
			if !ok {
				row = append(row, "-")
				continue
			}
			row = append(row, fmt.Sprint(v))
		}
		row = append(row, strconv.Itoa(g.Points))
		if g.Val == nil {
			row = append(row, "-", "-", "-", fmt.Sprintf("0/%d", g.TestTrials), firstLine(g.Note))
			tw.row(row...)
			continue
		}
		row = append(row, fmt.Sprintf("%.4g", *g.Val))
		s := g.Test
		if s.N == 0 {
			row = append(row, "-", "-")
		} else {
			row = append(row, fmt.Sprintf("%.4g", s.Mean), ciText(s))
		}
		row = append(row, fmt.Sprintf("%d/%d", s.N, g.TestTrials))
		tw.row(row...)
	}
	if tw != nil {
		return tw.flush()
	}
	return nil
}

// ciText is a summary's 95% interval, "[lo, hi]" (Student-t below
// analysis.SmallN values, the percentile bootstrap's from there, as in the
// report), or "-" when it has too few values for one.
func ciText(s analysis.Summary) string {
	if s.N < 2 {
		return "-"
	}
	lo, hi := s.Interval()
	return fmt.Sprintf("[%.4g, %.4g]", lo, hi)
}

func joinAxes(axes []string) string {
	if len(axes) == 0 {
		return "nothing"
	}
	return strings.Join(axes, ", ")
}

func upper(s string) string { return strings.ToUpper(s) }

// tunePlanLine tells what bench plan's trial list of a tune sweep is: its
// search phase, and what the test phase adds.
func tunePlanLine(plan *sweeps.Plan) string {
	pr := plan.Protocol
	most := 0
	for _, g := range pr.Groups {
		most = max(most, len(g.Points))
	}
	dir := pr.Direction
	if dir == "" {
		dir = "its known direction"
	}
	return fmt.Sprintf("protocol tune: the trials below are the search phase: %d groups, %s over at most %d points each × %d tune seed(s), chosen on %s (%s); "+
		"then the test phase runs each group's choice on test seeds %v: up to %d more trials",
		len(pr.Groups), joinAxes(pr.Axes), most, len(pr.TuneSeeds), pr.Metric, dir, pr.TestSeeds, len(pr.Groups)*len(pr.TestSeeds))
}
