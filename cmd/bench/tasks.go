package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"peftbench/tasks"
)

func init() {
	register(command{
		Name:    "tasks",
		Order:   45,
		Summary: "list the registered fine-tuning tasks, their architectures, metrics and options",
		Run:     runTasks,
	})
}

// runTasks prints the task registry as an aligned table, or with --json as
// an array of objects (name, description, architecture, metrics, options).
func runTasks(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tasks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench tasks [--json]")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	return printTasks(stdout, tasks.Infos(), *asJSON)
}

func printTasks(w io.Writer, infos []tasks.Info, asJSON bool) error {
	if asJSON {
		return writeJSON(w, infos)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tARCHITECTURE\tBASE ACC\tOPTIONS (defaults; * = changes the base model)")
	for _, in := range infos {
		opts := make([]string, len(in.Options))
		for i, o := range in.Options {
			star := ""
			if o.Base {
				star = "*"
			}
			opts[i] = fmt.Sprintf("%s%s=%v", o.Name, star, o.Default)
		}
		fmt.Fprintf(tw, "%s\t%s\t≥ %.2f\t%s\n", in.Name, in.Architecture, in.BaseAccuracy, strings.Join(opts, " "))
	}
	return tw.Flush()
}
