package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"peftbench/methods"
)

func init() {
	register(command{
		Name:    "methods",
		Order:   40,
		Summary: "list the registered PEFT methods, their papers and options",
		Run:     runMethods,
	})
}

// runMethods prints the method registry as an aligned table, or with
// --json as an array of objects (name, family, paper, options, …).
func runMethods(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("methods", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench methods [--json]")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	return printMethods(stdout, methods.Infos(), *asJSON)
}

func printMethods(w io.Writer, infos []methods.Info, asJSON bool) error {
	if asJSON {
		return writeJSON(w, infos)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFAMILY\tPAPER\tRANK AXIS\tTRAINABLE\tOPTIONS (defaults)")
	for _, in := range infos {
		paper := "—"
		if in.Paper.Year != 0 {
			paper = fmt.Sprintf("%s %d arXiv:%s", in.Paper.Authors, in.Paper.Year, in.Paper.ArXiv)
			if in.Paper.ArXiv == "" {
				paper = fmt.Sprintf("%s %d %s", in.Paper.Authors, in.Paper.Year, in.Paper.URL)
			}
		}
		rank := "—" // the option a sweep's rank axis sets
		if in.HasRank {
			rank = in.RankOptionName()
		}
		opts := make([]string, len(in.Options))
		for i, o := range in.Options {
			opts[i] = fmt.Sprintf("%s=%v", o.Name, o.Default)
		}
		if len(opts) == 0 {
			opts = []string{"—"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.Family, paper, rank, in.ParamsFormula, strings.Join(opts, " "))
	}
	return tw.Flush()
}
