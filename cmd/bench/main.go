// Command bench runs PEFT benchmark sweeps and analyses their results.
//
// Usage:
//
//	bench <command> [flags] [args]
//
// Run `bench help` for the commands, `bench help <command>` or
// `bench <command> -h` for one command's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"gonum.org/v1/gonum/blas/blas64"

	"peftbench/internal/parblas"
	"peftbench/internal/suggest"
)

// The spectra of large matrices (bench spectra on real checkpoints, bench
// perf, the analysis of trials with layers of 512 and more) decompose
// through gonum's LAPACK; parblas gives it parallel level-2 routines and
// the AVX2 float64 GEMM of package kernels (on 2 cores, a 1024² base
// decomposition 1.19 → 0.7 s, 4096² 228 → 27 s), with results
// that do not depend on the core count. Small matrices, all the builtin
// tasks' layers among them, get gonum's own results, bit for bit.
func init() { blas64.Use(parblas.Implementation{}) }

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		code = c.ExitCode()
	}
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = 2
	}
	os.Exit(code)
}

// command is one subcommand. Each lives in its own file and registers itself
// from an init function.
type command struct {
	Name    string
	Order   int // position in help: lower first
	Summary string
	Run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// register adds a subcommand; it panics on a duplicate name.
func register(c command) {
	if _, dup := commands[c.Name]; dup {
		panic("bench: command " + c.Name + " registered twice")
	}
	commands[c.Name] = c
}

// sortedCommands returns the commands in help order.
func sortedCommands() []command {
	cs := make([]command, 0, len(commands))
	for _, c := range commands {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Order != cs[j].Order {
			return cs[i].Order < cs[j].Order
		}
		return cs[i].Name < cs[j].Name
	})
	return cs
}

// run is the whole program: main only calls it and exits.
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("bench: no command given")
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" || name == "-help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.Run([]string{"-h"}, stdout, stdout)
			}
		}
		usage(stdout)
		return nil
	}
	c, ok := commands[name]
	if !ok {
		var names []string
		for n := range commands {
			names = append(names, n)
		}
		msg := fmt.Sprintf("bench: unknown command %q", name)
		sort.Strings(names)
		msg += suggest.DidYouMean(name, names)
		return errors.New(msg + "; run 'bench help' for the list")
	}
	return c.Run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "bench runs parameter-efficient fine-tuning benchmark sweeps and analyses their results.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: bench <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	width := 0
	for _, c := range sortedCommands() {
		width = max(width, len(c.Name))
	}
	for _, c := range sortedCommands() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.Name, c.Summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'bench <command> -h' for a command's flags.")
}
