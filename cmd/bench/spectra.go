package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/gonum/mat"

	"peftbench/analysis"
	"peftbench/safetensors"
	"peftbench/sweeps"
)

func init() {
	register(command{
		Name:    "spectra",
		Order:   60,
		Summary: "intruder dimensions and spectra of real checkpoints (safetensors, sharded, or a PEFT adapter)",
		Run:     runSpectra,
	})
}

// spectraOptions are the inputs of `bench spectra`.
type spectraOptions struct {
	Base, Tuned, Adapter string
	Layers               []string // target patterns (sweeps.MatchTarget); nil = every 2-D *.weight
	Eps                  []float64
	TopK                 int
}

// spectraLayer is one matrix pair of the report.
type spectraLayer struct {
	Layer        string    `json:"layer"`
	Tensor       string    `json:"tensor"` // name in the base checkpoint
	Rows         int       `json:"rows"`
	Cols         int       `json:"cols"`
	BaseSigma    []float64 `json:"base_sigma"`  // top k of W0
	TunedSigma   []float64 `json:"tuned_sigma"` // top k of W
	MaxCos       []float64 `json:"max_cos"`     // per tuned direction: max |cos| to W0's left singular vectors
	Intruders    []int     `json:"intruders"`   // per ε
	DeltaNorm    float64   `json:"delta_fro"`   // ‖W − W0‖_F
	EffRankDelta float64   `json:"effective_rank_delta"`
	EnergyRank90 int       `json:"energy_rank_90_delta"`
}

// spectraReport is what `bench spectra --json` prints.
type spectraReport struct {
	Base    string         `json:"base"`
	Tuned   string         `json:"tuned,omitempty"`
	Adapter string         `json:"adapter,omitempty"`
	Eps     []float64      `json:"eps"`
	TopK    int            `json:"top_k"`
	Layers  []spectraLayer `json:"layers"`
	Total   []int          `json:"total_intruders"` // per ε, summed over layers
}

func runSpectra(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("spectra", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o spectraOptions
	fs.StringVar(&o.Base, "base", "", "base checkpoint: a .safetensors file, or a folder with model.safetensors or model.safetensors.index.json")
	fs.StringVar(&o.Tuned, "tuned", "", "tuned checkpoint, in the same forms as --base")
	fs.StringVar(&o.Adapter, "adapter", "", "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors), merged into --base")
	layers := fs.String("layers", "", "comma-separated layer patterns: a name, a glob over the dotted name, or re:REGEXP (default: every 2-D *.weight)")
	eps := fs.String("eps", "0.5", "comma-separated intruder thresholds ε")
	fs.IntVar(&o.TopK, "top-k", 10, "top singular directions of the tuned matrix checked")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench spectra --base PATH (--tuned PATH | --adapter DIR) [--layers PATTERN,...] [--eps 0.5,...] [--top-k 10] [--json]")
		fmt.Fprintln(stderr, "\nIntruder dimensions (Shuttleworth et al. 2024) and spectra of every weight matrix")
		fmt.Fprintln(stderr, "present in both checkpoints, one matrix pair in memory at a time.")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *layers != "" {
		o.Layers = splitList(*layers)
	}
	for _, s := range splitList(*eps) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || !(v > 0 && v <= 1) {
			return fmt.Errorf("bench spectra: --eps %q: want numbers in (0, 1]", s)
		}
		o.Eps = append(o.Eps, v)
	}
	rep, err := spectra(o)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return printSpectra(stdout, rep)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// spectra analyses every selected matrix pair of o.
func spectra(o spectraOptions) (*spectraReport, error) {
	if o.Base == "" || (o.Tuned == "") == (o.Adapter == "") {
		return nil, usageErrorf("bench spectra: want --base and exactly one of --tuned and --adapter")
	}
	if o.TopK <= 0 {
		return nil, fmt.Errorf("bench spectra: --top-k %d, want > 0", o.TopK)
	}
	if len(o.Eps) == 0 {
		o.Eps = []float64{0.5}
	}
	for _, p := range o.Layers {
		if _, err := sweeps.MatchTarget(p, "x"); err != nil {
			return nil, fmt.Errorf("bench spectra: --layers: %w", err)
		}
	}
	base, err := safetensors.OpenModel(o.Base)
	if err != nil {
		return nil, err
	}
	defer base.Close()
	rep := &spectraReport{Base: o.Base, Tuned: o.Tuned, Adapter: o.Adapter, Eps: o.Eps, TopK: o.TopK, Total: make([]int, len(o.Eps))}

	// pairs lists (layer, base tensor) and load returns one pair's W0, W.
	type pair struct{ layer, tensor string }
	var pairs []pair
	var load func(p pair) (w0, w []float32, rows, cols int, err error)
	transpose := false
	if o.Adapter != "" {
		ad, err := safetensors.OpenAdapter(o.Adapter)
		if err != nil {
			return nil, err
		}
		defer ad.Close()
		match, err := ad.Match(base.Names())
		if err != nil {
			return nil, err
		}
		for _, l := range ad.Layers() {
			pairs = append(pairs, pair{l, match[l]})
		}
		transpose = ad.Config.FanInFanOut // Conv1D: stored in×out, analysed out×in
		load = func(p pair) ([]float32, []float32, int, int, error) {
			w0, rows, cols, err := matrix(base, p.tensor)
			if err != nil {
				return nil, nil, 0, 0, err
			}
			w := slices.Clone(w0)
			if err := ad.MergeInto(p.layer, w, rows, cols); err != nil {
				return nil, nil, 0, 0, err
			}
			return w0, w, rows, cols, nil
		}
	} else {
		tuned, err := safetensors.OpenModel(o.Tuned)
		if err != nil {
			return nil, err
		}
		defer tuned.Close()
		have := map[string]bool{}
		for _, n := range tuned.Names() {
			have[n] = true
		}
		for _, n := range base.Names() {
			layer, ok := strings.CutSuffix(n, ".weight")
			if !ok || !have[n] {
				continue
			}
			bi, err1 := base.Info(n)
			ti, err2 := tuned.Info(n)
			if err1 != nil || err2 != nil || len(bi.Shape) != 2 || !bi.DType.Float() || !ti.DType.Float() {
				continue
			}
			if !slices.Equal(bi.Shape, ti.Shape) {
				return nil, fmt.Errorf("bench spectra: %s: base %v, tuned %v", n, bi.Shape, ti.Shape)
			}
			pairs = append(pairs, pair{layer, n})
		}
		load = func(p pair) ([]float32, []float32, int, int, error) {
			w0, rows, cols, err := matrix(base, p.tensor)
			if err != nil {
				return nil, nil, 0, 0, err
			}
			w, _, _, err := matrix(tuned, p.tensor)
			return w0, w, rows, cols, err
		}
	}

	for _, p := range pairs {
		if !selected(o.Layers, p.layer) {
			continue
		}
		w0, w, rows, cols, err := load(p)
		if err != nil {
			return nil, err
		}
		if transpose {
			w0, w, rows, cols = transposed(w0, rows, cols), transposed(w, rows, cols), cols, rows
		}
		l, err := analyse(p.layer, p.tensor, w0, w, rows, cols, o)
		if err != nil {
			return nil, err
		}
		for e, c := range l.Intruders {
			rep.Total[e] += c
		}
		rep.Layers = append(rep.Layers, l)
	}
	if len(rep.Layers) == 0 {
		return nil, errors.New("bench spectra: no weight matrix selected (both checkpoints, 2-D, *.weight, matching --layers)")
	}
	return rep, nil
}

func selected(patterns []string, layer string) bool {
	if patterns == nil {
		return true
	}
	for _, p := range patterns {
		if ok, _ := sweeps.MatchTarget(p, layer); ok {
			return true
		}
	}
	return false
}

// matrix reads a 2-D float tensor as float32.
func matrix(m *safetensors.Model, name string) ([]float32, int, int, error) {
	data, shape, err := m.Tensor(name)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(shape) != 2 {
		return nil, 0, 0, fmt.Errorf("bench spectra: %s has shape %v, want a matrix", name, shape)
	}
	return data, shape[0], shape[1], nil
}

func transposed(w []float32, rows, cols int) []float32 {
	t := make([]float32, len(w))
	for i := range rows {
		for j := range cols {
			t[j*rows+i] = w[i*cols+j]
		}
	}
	return t
}

func dense(w []float32, rows, cols int) *mat.Dense {
	d := make([]float64, len(w))
	for i, v := range w {
		d[i] = float64(v)
	}
	return mat.NewDense(rows, cols, d)
}

// analyse runs the intruder analysis of one pair (package analysis).
func analyse(layer, tensor string, w0, w []float32, rows, cols int, o spectraOptions) (spectraLayer, error) {
	m0, m := dense(w0, rows, cols), dense(w, rows, cols)
	bs, err := analysis.DecomposeBase(m0)
	if err != nil {
		return spectraLayer{}, fmt.Errorf("bench spectra: %s: %w", layer, err)
	}
	ls, err := analysis.AnalyzeLayer(bs, m0, m, analysis.IntruderOptions{K: o.TopK, Eps: o.Eps})
	if err != nil {
		return spectraLayer{}, fmt.Errorf("bench spectra: %s: %w", layer, err)
	}
	l := spectraLayer{
		Layer: layer, Tensor: tensor, Rows: rows, Cols: cols,
		BaseSigma: ls.BaseSigma, Intruders: ls.Intruders.Counts,
		EffRankDelta: ls.EffRankDelta, EnergyRank90: ls.EnergyRank90,
	}
	for _, d := range ls.Intruders.Dirs {
		l.TunedSigma = append(l.TunedSigma, d.Sigma)
		l.MaxCos = append(l.MaxCos, d.MaxCos)
	}
	var fro float64
	for _, s := range ls.DeltaSigma {
		fro += s * s
	}
	l.DeltaNorm = math.Sqrt(fro)
	return l, nil
}

func printSpectra(w io.Writer, r *spectraReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "LAYER\tSHAPE\tσ1 BASE\tσ1 TUNED\tMIN MAX|COS|\t‖ΔW‖_F\tEFF RANK ΔW"
	for _, e := range r.Eps {
		head += fmt.Sprintf("\tINTRUDERS ε=%g", e)
	}
	fmt.Fprintln(tw, head+"\t")
	for _, l := range r.Layers {
		minCos := 1.0
		for _, c := range l.MaxCos {
			minCos = min(minCos, c)
		}
		row := fmt.Sprintf("%s\t%d×%d\t%.4g\t%.4g\t%.3f\t%.4g\t%.1f", l.Layer, l.Rows, l.Cols,
			first(l.BaseSigma), first(l.TunedSigma), minCos, l.DeltaNorm, l.EffRankDelta)
		for _, c := range l.Intruders {
			row += fmt.Sprintf("\t%d", c)
		}
		fmt.Fprintln(tw, row+"\t")
	}
	total := fmt.Sprintf("total (%d matrices, top %d)\t\t\t\t\t\t", len(r.Layers), r.TopK)
	for _, c := range r.Total {
		total += fmt.Sprintf("\t%d", c)
	}
	fmt.Fprintln(tw, total+"\t")
	return tw.Flush()
}

func first(s []float64) float64 {
	if len(s) == 0 {
		return 0
	}
	return s[0]
}
