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
		fmt.Fprintln(stderr, "(mean ± 95% CI per method and rank), forgetting-law fits, every figure inlined,")
		fmt.Fprintln(stderr, "failed trials with reasons, and links to the Parquet tables.")
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
