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
	"bytes"
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

func main() { os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr)) }

// runMain runs the program, prints its error and returns the exit status:
//
//	0    success; also -h, --help and help [CMD]
//	1    the command failed (bench regress: a regression was found)
//	2    usage errors: no or an unknown command, bad flags, missing or extra
//	     arguments; bench regress: anything that kept it from comparing
//	130  interrupted by SIGINT (Ctrl-C), 143 by SIGTERM, for the commands
//	     that wait (run, status following a Slurm sweep, trial)
//
// An error may set its own status with an ExitCode method (usageError,
// interrupted, regressionsFound). A command that failed after printing its
// usage text (what the flag package does on a bad flag, and what every
// command does on wrong arguments) was called wrongly: status 2.
func runMain(args []string, stdout, stderr io.Writer) int {
	w := &usageWatch{w: stderr}
	err := run(args, stdout, w)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stderr, err)
	}
	return exitStatus(err, w.printed)
}

// exitStatus is the process status for run's error; usagePrinted says
// whether the command printed its usage text to stderr.
func exitStatus(err error, usagePrinted bool) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	if usagePrinted {
		return 2
	}
	return 1
}

// usageWatch passes writes through and notes whether one of them began
// with "usage:" (any case), as every command's usage text does.
type usageWatch struct {
	w       io.Writer
	printed bool
}

func (u *usageWatch) Write(p []byte) (int, error) {
	if t := bytes.TrimLeft(p, " \t\n"); len(t) >= 6 && bytes.EqualFold(t[:6], []byte("usage:")) {
		u.printed = true
	}
	return u.w.Write(p)
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
		return usageErrorf("bench: no command given")
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" || name == "-help" {
		if len(args) > 2 {
			return usageErrorf("bench help: want at most one command, got %d", len(args)-1)
		}
		if len(args) == 2 {
			c, ok := commands[args[1]]
			if !ok {
				return unknownCommand(args[1])
			}
			// A command's -h prints its flags and returns flag.ErrHelp:
			// asked for, so a success.
			if err := c.Run([]string{"-h"}, stdout, stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
				return err
			}
			return nil
		}
		usage(stdout)
		return nil
	}
	c, ok := commands[name]
	if !ok {
		return unknownCommand(name)
	}
	return c.Run(args[1:], stdout, stderr)
}

// unknownCommand is the usage error for a command name that is not one.
func unknownCommand(name string) error {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	msg := fmt.Sprintf("bench: unknown command %q", name)
	msg += suggest.DidYouMean(name, names)
	return usageErrorf("%s; run 'bench help' for the list", msg)
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
