package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"time"

	"peftbench/tracker"
)

func init() {
	register(command{
		Name:    "export-tracker",
		Order:   36,
		Summary: "write results folders as TensorBoard event files or an MLflow file store (mlruns/)",
		Run:     runExportTracker,
	})
}

// runExportTracker is `bench export-tracker DIR... --format
// tensorboard|mlflow [--out OUT]`: the sweeps in the files of the
// trackers researchers already use (package tracker).
func runExportTracker(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export-tracker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "", "tensorboard (event files; also `wandb sync`, `aim convert tensorboard`) or mlflow (a file store, OUT/mlruns)")
	out := fs.String("out", "", "folder to write: TensorBoard's log dir (default runs), or the folder that gets mlruns/ (default .)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench export-tracker DIR... --format tensorboard|mlflow [--out OUT]")
		fmt.Fprintln(stderr, "\nWrites the finished trials of each results folder DIR for another tracker:")
		fmt.Fprintln(stderr, "  tensorboard  OUT/<sweep>/<label>_<trial id>/events.out.tfevents.*: scalars per step")
		fmt.Fprintln(stderr, "               (<split>/<metric>), final metrics (final/<column>) and the HParams")
		fmt.Fprintln(stderr, "               plugin, seeds of a configuration grouped; open: tensorboard --logdir OUT")
		fmt.Fprintln(stderr, "  mlflow       OUT/mlruns: an experiment per sweep, a parent run per configuration")
		fmt.Fprintln(stderr, "               across seeds, a child run per trial; open: mlflow ui --backend-store-uri OUT/mlruns")
		fmt.Fprintln(stderr, "The same folders give the same bytes. Existing output is not overwritten.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, interleave(fs, args)); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usageErrorf("bench export-tracker: want one or more results folders")
	}
	switch *format {
	case "tensorboard", "mlflow":
	default:
		fs.Usage()
		return usageErrorf("bench export-tracker: --format %q: want tensorboard or mlflow", *format)
	}
	begin := time.Now()
	var sweeps []*tracker.Sweep
	ntrials := 0
	for _, dir := range fs.Args() {
		s, note, err := tracker.Load(dir)
		if err != nil {
			return fmt.Errorf("bench export-tracker: %w", err)
		}
		if note != "" {
			fmt.Fprintf(stderr, "bench export-tracker: %s: %s\n", dir, note)
		}
		sweeps = append(sweeps, s)
		ntrials += len(s.Trials)
	}
	switch *format {
	case "tensorboard":
		dst := cmp.Or(*out, "runs")
		if _, err := tracker.WriteTensorBoard(dst, sweeps); err != nil {
			return fmt.Errorf("bench export-tracker: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %d trials of %d sweeps to %s in %.2fs; open with: tensorboard --logdir %s\n",
			ntrials, len(sweeps), dst, time.Since(begin).Seconds(), dst)
	case "mlflow":
		dst := cmp.Or(*out, ".")
		if _, err := tracker.WriteMLflow(dst, sweeps); err != nil {
			return fmt.Errorf("bench export-tracker: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %d trials of %d sweeps to %s/mlruns in %.2fs; open with: mlflow ui --backend-store-uri %s/mlruns\n",
			ntrials, len(sweeps), dst, time.Since(begin).Seconds(), dst)
	}
	return nil
}
