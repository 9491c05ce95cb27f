package plots

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/sourcegraph/conc/pool"

	"peftbench/internal/atomicfile"
)

// FiguresDir is the folder, inside a results folder, figures are written to.
const FiguresDir = "figures"

// Options selects what Write draws.
type Options struct {
	Formats []string // of Formats; default all three
	Only    []string // figure kinds; default all
}

// Written is what Write did.
type Written struct {
	Files []string // paths written, in figure order
	Skips []Skip
	// Warnings are Data.Warnings of the results drawn (a stale table, no
	// manifest), for the caller to show.
	Warnings []string
}

// Write draws every figure the results in dir support to
// dir/figures/<kind>[-<task>].<format>. Figures without data are skipped and
// reported in Written.Skips, never drawn empty. Figures are rendered in
// parallel; each file is written whole or not at all.
func Write(dir string, opt Options) (*Written, error) {
	formats := opt.Formats
	if len(formats) == 0 {
		formats = Formats
	}
	for _, f := range formats {
		if !slices.Contains(Formats, f) {
			return nil, fmt.Errorf("plots: unknown format %q (known: %s)", f, strings.Join(Formats, ", "))
		}
	}
	d, err := Load(dir)
	if err != nil {
		return nil, err
	}
	figs, skips, err := Figures(d, opt.Only)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, FiguresDir)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	w := &Written{Skips: skips, Warnings: d.Warnings}
	files := make([][]string, len(figs))
	p := pool.New().WithErrors().WithMaxGoroutines(runtime.GOMAXPROCS(0))
	for i, f := range figs {
		for _, format := range formats {
			files[i] = append(files[i], filepath.Join(out, f.Name+"."+format))
		}
		// One goroutine per figure: drawing mutates the figure's plots,
		// so its formats are rendered in turn.
		p.Go(func() error {
			for j, format := range formats {
				b, err := f.Encode(format)
				if err != nil {
					return err
				}
				if err := writeFile(files[i][j], b); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := p.Wait(); err != nil {
		return nil, err
	}
	for _, fs := range files {
		w.Files = append(w.Files, fs...)
	}
	return w, nil
}

// writeFile writes b to path atomically (atomicfile).
func writeFile(path string, b []byte) error {
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	return nil
}
