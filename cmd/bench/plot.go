package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"peftbench/plots"
)

func init() {
	register(command{
		Name:    "plot",
		Order:   50,
		Summary: "draw paper-style figures of a results folder into DIR/figures",
		Run:     runPlot,
	})
}

// runPlot is `bench plot DIR [--format png,svg,pdf] [--only NAME,...]`.
func runPlot(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", strings.Join(plots.Formats, ","), "comma-separated output formats: png, svg, pdf")
	only := fs.String("only", "", "comma-separated figure kinds to draw (default all)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench plot DIR [--format png,svg,pdf] [--only NAME,...]")
		fmt.Fprintln(stderr, "\nWrites DIR/figures/<kind>[-<task>].<format>. Figure kinds:")
		for _, k := range plots.Kinds() {
			fmt.Fprintf(stderr, "  %-15s %s\n", k[0], k[1])
		}
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	dir, err := parseResultsDirArgs(fs, args)
	if err != nil {
		return err
	}
	w, err := plots.Write(dir, plots.Options{Formats: splitPlotList(*format), Only: splitPlotList(*only)})
	if err != nil {
		return err
	}
	warnResults(stderr, "bench plot", w.Warnings)
	for _, s := range w.Skips {
		fmt.Fprintf(stderr, "bench plot: skipped %s\n", s)
	}
	for _, f := range w.Files {
		fmt.Fprintln(stdout, f)
	}
	if len(w.Files) == 0 {
		return fmt.Errorf("bench plot: %s: no figure has data to draw", dir)
	}
	return nil
}

// warnResults prints what plots.Load warns about a results folder (a stale
// trials.parquet read from the shards instead, no manifest) to stderr, so
// that no command reads a folder silently.
func warnResults(stderr io.Writer, cmd string, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", cmd, w)
	}
}

// parseResultsDirArgs parses flags placed before or after the one DIR argument.
func parseResultsDirArgs(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return "", errors.New("bench " + fs.Name() + ": missing results folder DIR")
	}
	dir := rest[0]
	if err := parseNoArgs(fs, rest[1:]); err != nil {
		return "", err
	}
	return filepath.Clean(dir), nil
}

// splitPlotList splits a comma-separated flag value, dropping empty items.
func splitPlotList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
