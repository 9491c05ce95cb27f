package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"peftbench/regress"
)

func init() {
	register(command{
		Name:    "regress",
		Order:   85,
		Summary: "compare a sweep's results (or bench perf figures) with a baseline; exit 1 on a regression",
		Run:     runRegress,
	})
}

// regressionsFound is the error bench regress returns when the comparison
// found regressions: the table has said which, and main exits with status 1.
type regressionsFound struct{ n int }

func (e regressionsFound) Error() string {
	if e.n == 1 {
		return "bench regress: 1 regression"
	}
	return fmt.Sprintf("bench regress: %d regressions", e.n)
}

// ExitCode is the process exit status for this error.
func (regressionsFound) ExitCode() int { return 1 }

// fraction is a flag value given as a fraction ("0.05") or a percentage
// ("5%").
type fraction float64

func (f *fraction) String() string { return strconv.FormatFloat(float64(*f)*100, 'g', -1, 64) + "%" }

func (f *fraction) Set(s string) error {
	s = strings.TrimSpace(s)
	scale := 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = t, 0.01
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("want a fraction (0.05) or a percentage (5%%)")
	}
	v *= scale
	if v < 0 || v >= 10 {
		return fmt.Errorf("%g is out of range [0, 1000%%)", v)
	}
	*f = fraction(v)
	return nil
}

// regressFailed is any error that kept bench regress from comparing: a bad
// flag, a missing folder, an unreadable table. It exits with status 2, so
// that status 1 always means "regressions found" (ci/nightly.sh relies on
// it).
type regressFailed struct{ err error }

func (e regressFailed) Error() string { return e.err.Error() }
func (e regressFailed) Unwrap() error { return e.err }

// ExitCode is the process exit status for this error.
func (regressFailed) ExitCode() int { return 2 }

// runRegress compares a current run with a baseline: the trials tables of
// two sweep folders, or (--perf, or .json paths) two files of bench perf
// --json output. It prints the table and returns regressionsFound when
// any row regressed, a regressFailed when it could not compare.
func runRegress(args []string, stdout, stderr io.Writer) error {
	err := compareRegress(args, stdout, stderr)
	var found regressionsFound
	if err == nil || errors.Is(err, flag.ErrHelp) || errors.As(err, &found) {
		return err
	}
	return regressFailed{err}
}

func compareRegress(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("regress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	baseline := fs.String("baseline", "", "baseline: a sweep folder (or its trials.parquet), or a bench perf JSON file")
	current := fs.String("current", "", "current run, of the same kind as --baseline")
	alpha := fs.Float64("alpha", 0.05, "significance level of the Mann–Whitney U test")
	minEffect := fraction(0.05)
	fs.Var(&minEffect, "min-effect", "smallest relative change of the median that counts, as 5% or 0.05")
	wallEffect := fraction(0)
	fs.Var(&wallEffect, "wall-min-effect", "also compare wall_seconds, flagging slowdowns of at least this much (e.g. 25%); 0 leaves wall time out")
	format := fs.String("format", "text", "output format: "+strings.Join(regress.Formats, ", "))
	perf := fs.Bool("perf", false, "compare bench perf --json outputs (implied by .json paths)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench regress --baseline PATH --current PATH [--alpha 0.05] [--min-effect 5%] [--format text|markdown|json] [--perf] [--wall-min-effect 25%]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("bench regress: unexpected argument %q", fs.Arg(0))
	case *baseline == "" || *current == "":
		fs.Usage()
		return errors.New("bench regress: --baseline and --current are required")
	case !(*alpha > 0 && *alpha < 1):
		return fmt.Errorf("bench regress: --alpha %g is not in (0, 1)", *alpha)
	case minEffect == 0:
		return errors.New("bench regress: --min-effect must be positive")
	case !slices.Contains(regress.Formats, *format) && *format != "md":
		return fmt.Errorf("bench regress: unknown format %q (want one of %s)", *format, strings.Join(regress.Formats, ", "))
	}
	opt := regress.Options{Alpha: *alpha, MinEffect: float64(minEffect), WallMinEffect: float64(wallEffect)}
	isJSON := func(p string) bool { return strings.HasSuffix(strings.ToLower(p), ".json") }
	if isJSON(*baseline) != isJSON(*current) && !*perf {
		return fmt.Errorf("bench regress: %s and %s are not of one kind (sweep folders, or bench perf JSON files)", *baseline, *current)
	}

	var rep *regress.Report
	if *perf || isJSON(*baseline) {
		base, err := regress.ReadPerfFile(*baseline)
		if err != nil {
			return err
		}
		cur, err := regress.ReadPerfFile(*current)
		if err != nil {
			return err
		}
		if rep, err = regress.ComparePerf(base, cur, opt); err != nil {
			return err
		}
	} else {
		base, err := regress.LoadTrials(*baseline)
		if err != nil {
			return err
		}
		cur, err := regress.LoadTrials(*current)
		if err != nil {
			return err
		}
		if rep, err = regress.CompareTrials(base, cur, opt); err != nil {
			return err
		}
	}
	rep.Baseline, rep.Current = *baseline, *current
	if err := rep.Write(stdout, *format); err != nil {
		return err
	}
	if n := len(rep.Regressions()); n > 0 {
		return regressionsFound{n}
	}
	return nil
}
