package main

import (
	"flag"
	"fmt"
	"io"

	"peftbench/plots"
)

func init() {
	register(command{
		Name:    "report",
		Order:   55,
		Summary: "write a self-contained HTML report of a results folder to DIR/report.html",
		Run:     runReport,
	})
}

// runReport is `bench report DIR`.
func runReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench report DIR")
		fmt.Fprintln(stderr, "\nWrites DIR/report.html: the sweep and its provenance, a results table per task")
		fmt.Fprintln(stderr, "(mean ± 95% CI per configuration: Student-t below 5 seeds, bootstrap from 5),")
		fmt.Fprintln(stderr, "forgetting-law fits (degenerate ones warned about, as bench fit refuses them), every")
		fmt.Fprintln(stderr, "figure inlined, failed trials with reasons, links to the Parquet tables, and a Pareto")
		fmt.Fprintln(stderr, "view of any two numeric columns with a filter box; the view's state is in the URL")
		fmt.Fprintln(stderr, "fragment (report.html#task=T&x=COLUMN&y=COLUMN&filter=WORDS), so a view can be linked.")
	}
	dir, err := parseResultsDirArgs(fs, args)
	if err != nil {
		return err
	}
	path, err := plots.WriteReport(dir)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, path)
	return nil
}
