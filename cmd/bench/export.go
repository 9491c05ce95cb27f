package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"peftbench/export"
	"peftbench/tasks"
)

func init() {
	register(command{
		Name:    "export",
		Order:   70,
		Summary: "write a builtin trial's data, base weights and initial adapter for an external trainer",
		Run:     runExport,
	})
}

// runExport is `bench export --trial FILE --out DIR [--data-only]`: the
// reference PyTorch trainer calls it with $PEFTBENCH_TRIAL to get exactly
// the data and initialisation the builtin engine would use.
func runExport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	trial := fs.String("trial", "", "trial file of the trainer protocol (the runner's $PEFTBENCH_TRIAL)")
	out := fs.String("out", "", "folder to write export.json and the .safetensors files into")
	dataOnly := fs.Bool("data-only", false, "skip the method: base weights and data only (for trainers with their own method code, such as HF PEFT)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench export --trial FILE --out DIR [--data-only]")
		fmt.Fprintln(stderr, "\nWrites export.json, base.safetensors, init.safetensors and data.safetensors")
		fmt.Fprintln(stderr, "(see trainers/pytorch/README.md). The base model comes from $"+tasks.CacheEnv+" or the user cache.")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *trial == "" || *out == "" {
		fs.Usage()
		return errors.New("bench export: --trial and --out are required")
	}
	dir, err := tasks.DefaultCacheDir()
	if err != nil {
		return err
	}
	cache, err := tasks.NewCache(dir)
	if err != nil {
		return err
	}
	m, err := export.FromTrial(context.Background(), *trial, cache, *out, export.Options{DataOnly: *dataOnly})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported %s on %s: %d steps of %d, %d trainable parameters, into %s\n",
		m.Method, m.Task, m.Train.Steps, m.Train.Batch, m.TrainableParams, *out)
	return nil
}
